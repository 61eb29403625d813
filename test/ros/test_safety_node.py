"""The safety node in a real rclpy graph: a probe plays the fusion node and the robot."""

import math
import signal

import pytest
from geometry_msgs.msg import Twist, TwistStamped
from rcl_interfaces.srv import GetParameters
from ros_harness import Collector, Repeater, wait_until
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32, Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_ros.nodes.safety_node import SafetyNode
from vla_ros.ros import qos

pytestmark = pytest.mark.ros

FAST = {  # generous acceleration so the first command already shows the speed
    "max_linear_accel": 100.0,
    "max_angular_accel": 100.0,
    "max_joint_accel": 100.0,
    "uncertainty_slowdown": 0.2,
    "uncertainty_stop": 0.6,
}


def proposal(ros, names, velocities, uncertainty):
    msg = JointState(name=list(names), velocity=[float(v) for v in velocities])
    msg.effort = [float(uncertainty)] * len(msg.name)
    msg.header.stamp = ros.probe.get_clock().now().to_msg()
    return msg


class FusionStandIn:
    """The probe publishing proposals at 10 Hz, as the fusion node would."""

    def __init__(self, ros, names=("linear_x", "angular_z"), velocities=(0.3, 0.4), u=0.0):
        self.names, self.velocities, self.uncertainty = names, velocities, u
        self.publisher = ros.publisher(JointState, "/vla/proposal", qos.LATEST)
        self.repeater = Repeater(
            ros,
            self.publisher,
            lambda: proposal(ros, self.names, self.velocities, self.uncertainty),
            10.0,
        )

    def stop(self):
        self.repeater.stop()


def moving(twist):
    return abs(twist.linear.x) > 1e-9 or abs(twist.angular.z) > 1e-9


def is_zero(twist):
    return not moving(twist)


@pytest.fixture
def safety(ros):
    cmd = ros.collect(Twist, "/cmd_vel")
    scale = ros.collect(Float32, "/vla/speed_scale")
    ros.add(SafetyNode, FAST)
    return cmd, scale


def test_confident_proposals_pass_within_the_limits(ros, safety):
    cmd, scale = safety
    FusionStandIn(ros, velocities=(2.0, 0.0))
    twist = cmd.wait_for(moving)
    assert twist is not None
    assert twist.linear.x == pytest.approx(0.5)  # max_linear_speed from config/vla.yaml
    assert scale.wait_for(lambda m: m.data == pytest.approx(1.0)) is not None


def test_uncertainty_scales_the_speed_down_then_to_zero(ros, safety):
    cmd, scale = safety
    fusion = FusionStandIn(ros, velocities=(0.4, 0.0), u=0.4)
    assert cmd.wait_for(lambda t: t.linear.x == pytest.approx(0.2)) is not None
    assert scale.wait_for(lambda m: m.data == pytest.approx(0.5)) is not None
    fusion.uncertainty = 0.7
    scale.clear()
    assert scale.wait_for(lambda m: m.data == 0.0) is not None
    cmd.clear()
    assert cmd.wait_for() is not None
    assert all(is_zero(t) for t in cmd.messages)


def test_non_finite_proposals_become_stop_commands(ros, safety):
    cmd, _ = safety
    fusion = FusionStandIn(ros, velocities=(0.3, 0.0))
    assert cmd.wait_for(moving) is not None
    fusion.velocities = (math.nan, 0.0)
    cmd.clear()
    assert cmd.wait_for(lambda t: True) is not None
    assert wait_until(lambda: len(cmd.messages) >= 5)
    assert all(is_zero(t) for t in cmd.messages)
    fusion.velocities, fusion.uncertainty = (0.3, 0.0), math.inf
    cmd.clear()
    assert wait_until(lambda: len(cmd.messages) >= 5)
    assert all(is_zero(t) for t in cmd.messages)


def test_watchdog_stops_and_keeps_stopping_until_proposals_return(ros, safety):
    cmd, _ = safety
    fusion = FusionStandIn(ros)
    assert cmd.wait_for(moving) is not None
    fusion.stop()
    assert cmd.wait_for(is_zero, timeout=3.0) is not None
    cmd.clear()
    assert wait_until(lambda: len(cmd.messages) >= 10, timeout=3.0)  # keeps publishing stops
    assert all(is_zero(t) for t in cmd.messages)
    FusionStandIn(ros)
    assert cmd.wait_for(moving) is not None


def test_stop_service_holds_zero_until_resume(ros, safety):
    cmd, _ = safety
    FusionStandIn(ros)
    assert cmd.wait_for(moving) is not None
    assert ros.call(Trigger, "/vla/stop", Trigger.Request()).success
    cmd.clear()
    assert wait_until(lambda: len(cmd.messages) >= 10, timeout=3.0)
    assert all(is_zero(t) for t in cmd.messages)
    assert ros.call(Trigger, "/vla/resume", Trigger.Request()).success
    assert cmd.wait_for(moving) is not None


def test_stop_instruction_stops_and_a_new_command_resumes(ros, safety):
    cmd, _ = safety
    FusionStandIn(ros)
    instruction = ros.publisher(String, "/vla/instruction", qos.LATCHED)
    assert cmd.wait_for(moving) is not None
    instruction.publish(String(data="stop"))
    assert cmd.wait_for(is_zero, timeout=1.0) is not None
    cmd.clear()
    assert wait_until(lambda: len(cmd.messages) >= 5)
    assert all(is_zero(t) for t in cmd.messages)
    instruction.publish(String(data="go to the red cube"))
    assert cmd.wait_for(moving) is not None


def test_joint_velocity_mode_publishes_in_joint_names_order(ros):
    commands = ros.collect(Float64MultiArray, "/joint_commands")
    ros.add(
        SafetyNode,
        {**FAST, "output_mode": "joint_velocity", "joint_names": ["a", "b", "c"]},
    )
    FusionStandIn(ros, names=("c", "a"), velocities=(0.3, -0.2))
    msg = commands.wait_for(lambda m: any(m.data))
    assert msg is not None
    assert list(msg.data) == pytest.approx([-0.2, 0.0, 0.3])


def test_joint_trajectory_stop_holds_the_measured_positions(ros):
    trajectories = ros.collect(JointTrajectory, "/joint_trajectory")
    ros.add(SafetyNode, {**FAST, "output_mode": "joint_trajectory", "joint_names": ["a", "b"]})
    robot = ros.publisher(JointState, "/joint_states", qos.SENSOR)
    Repeater(ros, robot, lambda: JointState(name=["b", "a"], position=[0.7, -0.4]), 20.0)
    fusion = FusionStandIn(ros, names=("a", "b"), velocities=(0.5, 0.0))
    moving_msg = trajectories.wait_for(lambda m: m.points and any(m.points[0].velocities))
    assert moving_msg is not None
    assert list(moving_msg.joint_names) == ["a", "b"]
    assert moving_msg.points[0].positions[0] > -0.4  # ahead of the measured position
    fusion.stop()
    stop = trajectories.wait_for(
        lambda m: m.points and not any(m.points[0].velocities), timeout=3.0
    )
    assert stop is not None
    assert list(stop.points[0].positions) == pytest.approx([-0.4, 0.7])  # never the zero pose


def test_twist_stamped_when_asked(ros):
    stamped = ros.collect(TwistStamped, "/cmd_vel")
    ros.add(SafetyNode, {**FAST, "cmd_vel_stamped": True})
    FusionStandIn(ros)
    msg = stamped.wait_for(lambda m: m.twist.linear.x > 0)
    assert msg is not None
    assert msg.header.stamp.sec > 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"max_linear_speed": -1.0}, ""),
        ({"uncertainty_slowdown": 0.9}, "must be below"),
        ({"uncertainty_stop": 0.1}, "must be below"),
        ({"output_mode": "warp_drive"}, "output_mode"),
    ],
)
def test_invalid_runtime_changes_are_refused_and_change_nothing(ros, safety, change, reason):
    results = ros.set_parameters("safety_node", change)
    assert not all(r.successful for r in results)
    assert reason in " ".join(r.reason for r in results)
    names = list(change)
    current = ros.call(
        GetParameters, "/safety_node/get_parameters", GetParameters.Request(names=names)
    )
    assert [v.double_value or v.string_value for v in current.values] != list(change.values())


def test_valid_runtime_change_takes_effect(ros, safety):
    cmd, _ = safety
    FusionStandIn(ros, velocities=(2.0, 0.0))
    assert cmd.wait_for(moving) is not None
    results = ros.set_parameters("safety_node", {"max_linear_speed": 0.2})
    assert all(r.successful for r in results)
    cmd.clear()
    assert cmd.wait_for(lambda t: t.linear.x == pytest.approx(0.2)) is not None


def test_executable_stops_the_robot_on_sigterm_and_obeys_remaps(ros):
    cmd: Collector = ros.collect(Twist, "/robot/cmd_vel")
    process = ros.start(
        "safety_node",
        [
            "-r",
            "/cmd_vel:=/robot/cmd_vel",
            "-p",
            "max_linear_speed:=0.25",
            "-p",
            "max_linear_accel:=100.0",
        ],
    )
    FusionStandIn(ros, velocities=(1.0, 0.0))
    assert cmd.wait_for(lambda t: t.linear.x == pytest.approx(0.25), timeout=20.0) is not None
    output = ros.stop(process, signal.SIGTERM)
    assert process.returncode == 0, output
    assert "stop command before shutting down" in output
    # the proposals keep coming, so the last message can only be zero if it was the final stop
    last = cmd.last
    assert is_zero(last), output
