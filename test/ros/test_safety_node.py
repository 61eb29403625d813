"""The safety node in a real rclpy graph: a probe plays the fusion node and the robot."""

import functools
import math
import signal
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from rcl_interfaces.srv import GetParameters
from ros_harness import Collector, Repeater, wait_until
from ros_harness import stopped_after as harness_stopped_after
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32, Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_ros import graph
from vla_ros.learn.evaluate import Deployment
from vla_ros.logic.params import node_parameters, read_parameter_file
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


def proposal(ros, names, velocities, uncertainty, stamp=None):
    msg = JointState(name=list(names), velocity=[float(v) for v in velocities])
    msg.effort = [float(uncertainty)] * len(msg.name)
    msg.header.stamp = stamp or ros.probe.get_clock().now().to_msg()
    return msg


class FusionStandIn:
    """The probe publishing proposals at 10 Hz, as the fusion node would.

    `clock` (a callable returning a builtin_interfaces Time) stamps them; default: wall time.
    """

    def __init__(
        self,
        ros,
        names=("linear_x", "angular_z"),
        velocities=(0.3, 0.4),
        u=0.0,
        clock=None,
        topic="/vla/proposal",
    ):
        self.names, self.velocities, self.uncertainty = names, velocities, u
        self.publisher = ros.publisher(JointState, topic, qos.LATEST)
        stamp = clock or (lambda: None)
        self.repeater = Repeater(
            ros,
            self.publisher,
            lambda: proposal(ros, self.names, self.velocities, self.uncertainty, stamp()),
            10.0,
        )

    def stop(self):
        self.repeater.stop()


def moving(twist):
    return abs(twist.linear.x) > 1e-9 or abs(twist.angular.z) > 1e-9


def is_zero(twist):
    return not moving(twist)


stopped_after = functools.partial(harness_stopped_after, check=is_zero)


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
    trigger = time.monotonic()
    fusion.stop()
    assert stopped_after(cmd, trigger, count=10)  # and keeps publishing stops
    FusionStandIn(ros)
    assert cmd.wait_for(moving) is not None


def test_stop_service_holds_zero_until_resume(ros, safety):
    cmd, _ = safety
    FusionStandIn(ros)
    assert cmd.wait_for(moving) is not None
    trigger = time.monotonic()
    assert ros.call(Trigger, "/vla/stop", Trigger.Request()).success
    assert stopped_after(cmd, trigger, count=10)
    assert ros.call(Trigger, "/vla/resume", Trigger.Request()).success
    assert cmd.wait_for(moving) is not None


def test_stop_instruction_stops_and_a_new_command_resumes(ros, safety):
    cmd, _ = safety
    FusionStandIn(ros)
    instruction = ros.publisher(String, "/vla/instruction", qos.LATCHED)
    assert cmd.wait_for(moving) is not None
    trigger = time.monotonic()
    instruction.publish(String(data="stop"))
    assert stopped_after(cmd, trigger)
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


class SaggingArm:
    """Joint states of an arm whose joint `a` sinks 0.01 rad per message unless held up.

    Published like ros2_control's joint_state_broadcaster: position-only joints carry NaN
    velocity and effort.
    """

    def __init__(self, ros):
        self.positions = {"a": -0.4, "b": 0.7}
        self.sagging = False
        publisher = ros.publisher(JointState, "/joint_states", qos.SENSOR)
        Repeater(ros, publisher, self.state, 20.0)

    def state(self):
        if self.sagging:
            self.positions["a"] -= 0.01
        return JointState(
            name=["b", "a"],
            position=[self.positions["b"], self.positions["a"]],
            velocity=[math.nan, math.nan],
            effort=[math.nan, math.nan],
        )


def points_moving(msg):
    return bool(msg.points) and any(msg.points[0].velocities)


def test_joint_trajectory_stop_holds_where_the_stop_began_not_where_the_arm_sags(ros):
    trajectories = ros.collect(JointTrajectory, "/joint_trajectory")
    ros.add(SafetyNode, {**FAST, "output_mode": "joint_trajectory", "joint_names": ["a", "b"]})
    arm = SaggingArm(ros)
    fusion = FusionStandIn(ros, names=("a", "b"), velocities=(0.5, 0.0))
    moving_msg = trajectories.wait_for(points_moving)
    assert moving_msg is not None
    assert list(moving_msg.joint_names) == ["a", "b"]
    assert moving_msg.points[0].positions[0] > -0.4  # ahead of the measured position
    assert (moving_msg.header.stamp.sec, moving_msg.header.stamp.nanosec) == (0, 0)
    trigger = time.monotonic()
    fusion.stop()
    first_stop = trajectories.wait_for(lambda m: not points_moving(m), timeout=3.0, after=trigger)
    assert first_stop is not None
    held = list(first_stop.points[0].positions)
    assert held == pytest.approx([-0.4, 0.7])  # where it was: never the zero pose
    arm.sagging = True
    sagged = arm.positions["a"]
    assert wait_until(lambda: arm.positions["a"] < sagged - 0.1)
    later = trajectories.since(time.monotonic() - 0.2)
    assert later and all(list(m.points[0].positions) == held for m in later)
    assert all((m.header.stamp.sec, m.header.stamp.nanosec) == (0, 0) for m in later)


def test_joint_trajectory_publishes_nothing_before_a_joint_state_and_says_why(ros):
    trajectories = ros.collect(JointTrajectory, "/joint_trajectory")
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    ros.add(SafetyNode, {**FAST, "output_mode": "joint_trajectory", "joint_names": ["a", "b"]})
    FusionStandIn(ros, names=("a", "b"), velocities=(0.5, 0.0))
    assert wait_until(
        lambda: any(
            s.name == "vla_ros/safety_node" and s.level == b"\x02" and "no joint state" in s.message
            for a in diagnostics.messages
            for s in a.status
        )
    )
    assert trajectories.messages == []  # never a trajectory without points
    SaggingArm(ros)
    assert trajectories.wait_for(points_moving) is not None
    assert all(m.points for m in trajectories.messages)


def test_twist_stamped_when_asked(ros):
    stamped = ros.collect(TwistStamped, "/cmd_vel")
    ros.add(SafetyNode, {**FAST, "cmd_vel_stamped": True})
    FusionStandIn(ros)
    msg = stamped.wait_for(lambda m: m.twist.linear.x > 0)
    assert msg is not None
    assert msg.header.stamp.sec > 0


def get_parameters(ros, names):
    values = ros.call(
        GetParameters, "/safety_node/get_parameters", GetParameters.Request(names=names)
    ).values
    return [v.double_value or v.string_value for v in values]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"max_linear_speed": -1.0}, "max_linear_speed"),
        ({"uncertainty_slowdown": 0.9}, "must be below"),
        ({"uncertainty_stop": 0.1}, "must be below"),
        ({"output_mode": "warp_drive"}, "output_mode"),
        ({"max_joint_brake": -2.0}, "max_joint_brake"),
    ],
)
def test_invalid_runtime_changes_are_refused_and_change_nothing(ros, safety, change, reason):
    cmd, _ = safety
    before = get_parameters(ros, list(change))
    FusionStandIn(ros, velocities=(2.0, 0.0))
    assert cmd.wait_for(lambda t: t.linear.x == pytest.approx(0.5)) is not None
    results = ros.set_parameters("safety_node", change)
    assert not all(r.successful for r in results)
    assert reason in " ".join(r.reason for r in results)
    assert get_parameters(ros, list(change)) == before
    trigger = time.monotonic()  # and the node still commands as before
    assert cmd.wait_for(lambda t: t.linear.x == pytest.approx(0.5), after=trigger) is not None


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


def test_cmd_vel_stamped_changed_at_run_time_never_kills_the_node(ros):
    """The old Twist publisher's last word is a Twist stop; the node lives on and answers."""
    cmd: Collector = ros.collect(Twist, "/cmd_vel")
    process = ros.start("safety_node", ["-p", "max_linear_accel:=100.0"])
    FusionStandIn(ros, velocities=(0.3, 0.0))
    assert cmd.wait_for(moving, timeout=20.0) is not None
    trigger = time.monotonic()
    results = ros.set_parameters("safety_node", {"cmd_vel_stamped": True})
    assert all(r.successful for r in results)
    assert cmd.wait_for(is_zero, after=trigger) is not None
    # Now stamped: plain Twist subscribers hear nothing more, and the last thing they heard is a
    # stop, although moving proposals keep coming.
    quiet = time.monotonic()
    assert not wait_until(lambda: cmd.since(quiet + 0.3), timeout=1.0)
    assert is_zero(cmd.last)
    assert process.poll() is None
    results = ros.set_parameters("safety_node", {"cmd_vel_stamped": False})
    assert all(r.successful for r in results)
    back = time.monotonic()
    assert cmd.wait_for(moving, after=back) is not None
    output = ros.stop(process, signal.SIGTERM)
    assert process.returncode == 0, output
    assert is_zero(cmd.last), output


def test_an_output_that_cannot_be_opened_leaves_the_old_one_stopping_and_the_node_alive(
    ros, safety
):
    """One process cannot carry a topic under two types (a component container; here the test
    graph, whose probe listens to /cmd_vel as Twist): the switch to TwistStamped fails. The old
    output comes back and keeps saying stop, whatever the proposals say, until the setting is
    undone and the robot resumed; the node answers throughout."""
    cmd, _ = safety
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    FusionStandIn(ros, velocities=(0.3, 0.0))
    assert cmd.wait_for(moving) is not None
    trigger = time.monotonic()
    assert all(r.successful for r in ros.set_parameters("safety_node", {"cmd_vel_stamped": True}))
    assert stopped_after(cmd, trigger)
    assert diagnostics.wait_for(
        lambda a: any("could not switch the output" in s.message for s in a.status), after=trigger
    )
    later = time.monotonic()  # another change retries the switch, and stays stopped
    assert all(r.successful for r in ros.set_parameters("safety_node", {"max_linear_speed": 0.4}))
    assert stopped_after(cmd, later)
    assert all(r.successful for r in ros.set_parameters("safety_node", {"cmd_vel_stamped": False}))
    assert ros.call(Trigger, "/vla/resume", Trigger.Request()).success
    back = time.monotonic()
    assert cmd.wait_for(moving, after=back) is not None


class SimClock:
    """The probe plays a simulator: publishes /clock, 10 ms of ROS time per 10 ms."""

    def __init__(self, ros, start=100.0):
        self.time = start
        publisher = ros.publisher(Clock, "/clock", 10)

        def tick():
            self.time += 0.01
            publisher.publish(Clock(clock=self.stamp()))

        self.timer = ros.probe.create_timer(0.01, tick)

    def stamp(self):
        from vla_ros.ros.messages import to_stamp

        return to_stamp(self.time)


def test_ros_time_jumping_back_stops_at_once_and_resumes_on_the_new_time(ros):
    cmd = ros.collect(Twist, "/cmd_vel")
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    log = ros.log()
    clock = SimClock(ros)
    ros.add(SafetyNode, {**FAST, "use_sim_time": True})
    FusionStandIn(ros, velocities=(0.3, 0.0), clock=clock.stamp)
    assert cmd.wait_for(moving, timeout=10.0) is not None
    trigger = time.monotonic()
    clock.time -= 30.0  # a simulator reset
    stop = cmd.wait_for(is_zero, after=trigger)
    assert stop is not None  # at once: not after 30 s, when the old time would come round again
    stopped_at = next(t for t, m in cmd.items if m is stop)
    assert cmd.wait_for(moving, after=stopped_at, timeout=5.0) is not None  # on the new time
    said = [
        s.message
        for a in diagnostics.messages
        for s in a.status
        if s.name == "vla_ros/safety_node" and "jumped back" in s.message
    ]
    assert said and all("30.0" in m or "29.9" in m or "30.1" in m for m in said)
    assert sum("jumped back" in entry.msg for entry in log.messages) == 1


def test_speeding_up_keeps_the_curvature(ros):
    cmd = ros.collect(Twist, "/cmd_vel")
    ros.add(
        SafetyNode,
        {**FAST, "max_linear_accel": 0.5, "max_angular_accel": 50.0, "max_angular_speed": 5.0},
    )
    FusionStandIn(ros, velocities=(0.4, 0.8))  # curvature 2 rad/m
    first = cmd.wait_for(moving)
    assert first is not None
    assert first.linear.x < 0.4  # limited by the linear acceleration...
    assert first.angular.z / first.linear.x == pytest.approx(2.0)  # ...and still turning as told
    assert cmd.wait_for(lambda t: t.linear.x == pytest.approx(0.4)) is not None


def test_a_braking_limit_ramps_slowing_down_but_stops_stay_immediate(ros):
    cmd = ros.collect(Twist, "/cmd_vel")
    ros.add(SafetyNode, {**FAST, "max_linear_brake": 0.5})
    fusion = FusionStandIn(ros, velocities=(0.4, 0.0))
    assert cmd.wait_for(lambda t: t.linear.x == pytest.approx(0.4)) is not None
    trigger = time.monotonic()
    fusion.velocities = (0.1, 0.0)
    slowing = cmd.wait_for(lambda t: t.linear.x < 0.4 - 1e-9, after=trigger)
    assert slowing is not None and slowing.linear.x > 0.1  # at most 0.05 m/s less per 0.1 s
    assert cmd.wait_for(lambda t: t.linear.x == pytest.approx(0.1), timeout=15.0) is not None
    trigger = time.monotonic()
    assert ros.call(Trigger, "/vla/stop", Trigger.Request()).success
    assert stopped_after(cmd, trigger)


def test_two_robots_in_two_namespaces_share_one_graph(ros):
    robot1 = ros.collect(Twist, "/robot1/cmd_vel")
    robot2 = ros.collect(Twist, "/robot2/cmd_vel")
    for namespace in ("/robot1", "/robot2"):
        ros.add(SafetyNode, FAST, namespace=namespace)
        FusionStandIn(ros, topic=f"{namespace}/vla/proposal")
    assert robot1.wait_for(moving) is not None
    assert robot2.wait_for(moving) is not None
    trigger = time.monotonic()
    assert ros.call(Trigger, "/robot1/vla/stop", Trigger.Request()).success
    assert stopped_after(robot1, trigger)
    assert robot2.wait_for(moving, after=time.monotonic()) is not None  # robot2 drives on


@pytest.mark.parametrize("scene", sorted(graph.SCENE_CONFIGS))
def test_the_governed_evaluation_runs_with_the_safety_nodes_settings(ros, scene):
    """`vla-ros eval` emulates the safety node of `vla-ros sim --scene`: started with the scene's
    parameter file, the node decides with exactly the settings the evaluation uses."""
    file_values = node_parameters(read_parameter_file(graph.scene_config(scene)), "safety_node")
    node = ros.add(SafetyNode, file_values)
    assert node.governor.config == Deployment.for_scene(scene).safety
