"""The vla_ros nodes against Gazebo (gz sim), bridged with ros_gz_bridge.

ros2 launch vla_ros gazebo.launch.py world:=/path/world.sdf robot_description:=/path/robot.sdf
Arguments: world, robot_description (SDF or URDF file spawned into the world), robot_name,
bridge_config (default: config/gz_bridge.yaml), headless, params_file, use_sim_time (default
true), namespace, log_level. Needs ros_gz_sim and ros_gz_bridge; see docs/gazebo.md.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition, UnlessCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from vla_ros.ros.launch import common_arguments, config_path, node_actions


def _gazebo(server_only: bool) -> IncludeLaunchDescription:
    flags = "-r -s " if server_only else "-r "
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch", "gz_sim.launch.py"])
        ),
        launch_arguments={"gz_args": [flags, LaunchConfiguration("world")]}.items(),
        condition=(IfCondition if server_only else UnlessCondition)(
            LaunchConfiguration("headless")
        ),
    )


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument("world", description="Gazebo world (SDF file)"),
            DeclareLaunchArgument(
                "robot_description", description="Robot model (SDF or URDF file) to spawn"
            ),
            DeclareLaunchArgument("robot_name", default_value="robot", description="Model name"),
            DeclareLaunchArgument(
                "bridge_config",
                default_value=config_path("gz_bridge.yaml"),
                description="ros_gz_bridge YAML: which topics cross between Gazebo and ROS",
            ),
            DeclareLaunchArgument(
                "headless",
                default_value="false",
                choices=["true", "false"],
                description="Run the Gazebo server without its GUI",
            ),
            *common_arguments("vla.yaml", use_sim_time=True),
            _gazebo(server_only=True),
            _gazebo(server_only=False),
            Node(
                package="ros_gz_sim",
                executable="create",
                output="screen",
                arguments=[
                    "-file",
                    LaunchConfiguration("robot_description"),
                    "-name",
                    LaunchConfiguration("robot_name"),
                    "-z",
                    "0.05",
                ],
            ),
            Node(
                package="ros_gz_bridge",
                executable="parameter_bridge",
                output="screen",
                parameters=[
                    {
                        "config_file": LaunchConfiguration("bridge_config"),
                        "use_sim_time": LaunchConfiguration("use_sim_time"),
                    }
                ],
            ),
            *node_actions(with_simulator=False),
        ]
    )
