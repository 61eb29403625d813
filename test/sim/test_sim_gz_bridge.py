"""config/gz_bridge.yaml: valid for ros_gz_bridge, with real ROS and Gazebo message types."""

import importlib

import pytest
import yaml

from vla_ros import paths

# ros_gz_bridge's documented topic mappings: the table "The following message types can be
# bridged for topics" in gazebosim/ros_gz, ros_gz_bridge/README.md (branch ros2, read at commit
# 017bdea6e76829b66968e4151d80cb0b7439d711). ROS type -> the Gazebo types it bridges to.
DOCUMENTED_MAPPINGS: dict[str, set[str]] = {
    "actuator_msgs/msg/Actuators": {"gz.msgs.Actuators"},
    "builtin_interfaces/msg/Time": {"gz.msgs.Time"},
    "geometry_msgs/msg/Point": {"gz.msgs.Vector3d"},
    "geometry_msgs/msg/Pose": {"gz.msgs.Pose"},
    "geometry_msgs/msg/PoseArray": {"gz.msgs.Pose_V"},
    "geometry_msgs/msg/PoseStamped": {"gz.msgs.Pose"},
    "geometry_msgs/msg/PoseWithCovariance": {"gz.msgs.PoseWithCovariance"},
    "geometry_msgs/msg/PoseWithCovarianceStamped": {"gz.msgs.PoseWithCovariance"},
    "geometry_msgs/msg/Quaternion": {"gz.msgs.Quaternion"},
    "geometry_msgs/msg/Transform": {"gz.msgs.Pose"},
    "geometry_msgs/msg/TransformStamped": {"gz.msgs.Pose"},
    "geometry_msgs/msg/Twist": {"gz.msgs.Twist"},
    "geometry_msgs/msg/TwistStamped": {"gz.msgs.Twist"},
    "geometry_msgs/msg/TwistWithCovariance": {"gz.msgs.TwistWithCovariance"},
    "geometry_msgs/msg/TwistWithCovarianceStamped": {"gz.msgs.TwistWithCovariance"},
    "geometry_msgs/msg/Vector3": {"gz.msgs.Vector3d"},
    "geometry_msgs/msg/Wrench": {"gz.msgs.Wrench"},
    "geometry_msgs/msg/WrenchStamped": {"gz.msgs.Wrench"},
    "gps_msgs/msg/GPSFix": {"gz.msgs.NavSat"},
    "nav_msgs/msg/Odometry": {"gz.msgs.Odometry", "gz.msgs.OdometryWithCovariance"},
    "rcl_interfaces/msg/ParameterValue": {"gz.msgs.Any"},
    "ros_gz_interfaces/msg/Altimeter": {"gz.msgs.Altimeter"},
    "ros_gz_interfaces/msg/Contact": {"gz.msgs.Contact"},
    "ros_gz_interfaces/msg/Contacts": {"gz.msgs.Contacts"},
    "ros_gz_interfaces/msg/Dataframe": {"gz.msgs.Dataframe"},
    "ros_gz_interfaces/msg/Entity": {"gz.msgs.Entity"},
    "ros_gz_interfaces/msg/EntityWrench": {"gz.msgs.EntityWrench"},
    "ros_gz_interfaces/msg/Float32Array": {"gz.msgs.Float_V"},
    "ros_gz_interfaces/msg/GuiCamera": {"gz.msgs.GUICamera"},
    "ros_gz_interfaces/msg/JointWrench": {"gz.msgs.JointWrench"},
    "ros_gz_interfaces/msg/Light": {"gz.msgs.Light"},
    "ros_gz_interfaces/msg/ParamVec": {"gz.msgs.Param", "gz.msgs.Param_V"},
    "ros_gz_interfaces/msg/SensorNoise": {"gz.msgs.SensorNoise"},
    "ros_gz_interfaces/msg/StringVec": {"gz.msgs.StringMsg_V"},
    "ros_gz_interfaces/msg/TrackVisual": {"gz.msgs.TrackVisual"},
    "ros_gz_interfaces/msg/VideoRecord": {"gz.msgs.VideoRecord"},
    "rosgraph_msgs/msg/Clock": {"gz.msgs.Clock"},
    "sensor_msgs/msg/BatteryState": {"gz.msgs.BatteryState"},
    "sensor_msgs/msg/CameraInfo": {"gz.msgs.CameraInfo"},
    "sensor_msgs/msg/FluidPressure": {"gz.msgs.FluidPressure"},
    "sensor_msgs/msg/Image": {"gz.msgs.Image"},
    "sensor_msgs/msg/Imu": {"gz.msgs.IMU"},
    "sensor_msgs/msg/JointState": {"gz.msgs.Model"},
    "sensor_msgs/msg/Joy": {"gz.msgs.Joy"},
    "sensor_msgs/msg/LaserScan": {"gz.msgs.LaserScan"},
    "sensor_msgs/msg/MagneticField": {"gz.msgs.Magnetometer"},
    "sensor_msgs/msg/NavSatFix": {"gz.msgs.NavSat"},
    "sensor_msgs/msg/PointCloud2": {"gz.msgs.PointCloudPacked"},
    "std_msgs/msg/Bool": {"gz.msgs.Boolean"},
    "std_msgs/msg/ColorRGBA": {"gz.msgs.Color"},
    "std_msgs/msg/Empty": {"gz.msgs.Empty"},
    "std_msgs/msg/Float32": {"gz.msgs.Float"},
    "std_msgs/msg/Float64": {"gz.msgs.Double"},
    "std_msgs/msg/Header": {"gz.msgs.Header"},
    "std_msgs/msg/Int32": {"gz.msgs.Int32"},
    "std_msgs/msg/String": {"gz.msgs.StringMsg"},
    "std_msgs/msg/UInt32": {"gz.msgs.UInt32"},
    "tf2_msgs/msg/TFMessage": {"gz.msgs.Pose_V"},
    "trajectory_msgs/msg/JointTrajectory": {"gz.msgs.JointTrajectory"},
    "vision_msgs/msg/Detection2D": {"gz.msgs.AnnotatedAxisAligned2DBox"},
    "vision_msgs/msg/Detection2DArray": {"gz.msgs.AnnotatedAxisAligned2DBox_V"},
    "vision_msgs/msg/Detection3D": {"gz::msgs::AnnotatedOriented3DBox"},
    "vision_msgs/msg/Detection3DArray": {"gz::msgs::AnnotatedOriented3DBox_V"},
}
DIRECTIONS = {"GZ_TO_ROS", "ROS_TO_GZ", "BIDIRECTIONAL"}
KEYS = {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction"}

# What vla_ros needs from a simulated robot (INTERFACE.md), with the types its nodes use.
REQUIRED = {
    "/camera/image_raw": ("sensor_msgs/msg/Image", "GZ_TO_ROS"),
    "/joint_states": ("sensor_msgs/msg/JointState", "GZ_TO_ROS"),
    "/clock": ("rosgraph_msgs/msg/Clock", "GZ_TO_ROS"),
    "/cmd_vel": ("geometry_msgs/msg/Twist", "ROS_TO_GZ"),
    "/joint_trajectory": ("trajectory_msgs/msg/JointTrajectory", "ROS_TO_GZ"),
}


@pytest.fixture(scope="module")
def bridges():
    entries = yaml.safe_load(paths.config_file("gz_bridge").read_text())
    assert isinstance(entries, list) and entries, "ros_gz_bridge wants a YAML list of maps"
    return entries


def ros_message_class(type_name: str) -> type:
    package, kind, name = type_name.split("/")
    assert kind == "msg", type_name
    return getattr(importlib.import_module(f"{package}.msg"), name)


def test_every_entry_is_a_complete_bridge_in_one_direction(bridges):
    for entry in bridges:
        assert set(entry) == KEYS, entry
        assert entry["direction"] in DIRECTIONS
        assert entry["ros_topic_name"].startswith("/") and entry["gz_topic_name"].startswith("/")
    topics = [entry["ros_topic_name"] for entry in bridges]
    assert len(topics) == len(set(topics))


def test_every_ros_type_is_a_real_message_and_every_pair_is_documented(bridges):
    for entry in bridges:
        message = ros_message_class(entry["ros_type_name"])
        assert hasattr(message, "get_fields_and_field_types")
        documented = DOCUMENTED_MAPPINGS.get(entry["ros_type_name"], set())
        assert entry["gz_type_name"] in documented, entry


def test_the_bridge_carries_what_the_nodes_read_and_write(bridges):
    by_topic = {entry["ros_topic_name"]: entry for entry in bridges}
    for topic, (ros_type, direction) in REQUIRED.items():
        assert topic in by_topic, f"{topic} is not bridged"
        assert (by_topic[topic]["ros_type_name"], by_topic[topic]["direction"]) == (
            ros_type,
            direction,
        )
