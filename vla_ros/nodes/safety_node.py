"""safety_node: proposals -> speed-scaled, limited commands for the robot, or stop commands.

All decisions are made by vla_ros.logic.safety.SafetyGovernor; this node converts messages,
owns the output publishers, the watchdog timer and the vla/stop and vla/resume services. Topic
and service names are relative, so a namespace (`-r __ns:=/robot1`) gives each robot its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.duration import Duration as RosDuration
from rclpy.node import Node
from rclpy.publisher import Publisher
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32, Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.logic.clock import jump_message
from vla_ros.logic.commands import InvalidCommand, parse_command
from vla_ros.logic.health import FaultLog, Level
from vla_ros.logic.joints import InvalidJointState, JointStateAssembler
from vla_ros.logic.params import ParamSpec, ParamType
from vla_ros.logic.safety import (
    ACCEL_WINDOW_S,
    Decision,
    Ignored,
    OutputMode,
    SafetyConfig,
    SafetyGovernor,
    TrajectoryTarget,
)
from vla_ros.logic.stats import LatencyStats
from vla_ros.ros import qos
from vla_ros.ros.clock import watch_clock
from vla_ros.ros.diagnostics import DiagnosticsReporter
from vla_ros.ros.logging import log_at
from vla_ros.ros.messages import proposal_from_message, seconds
from vla_ros.ros.params import ParameterSet
from vla_ros.ros.runner import run_node

NAME = "safety_node"
# Seconds a last stop command may take to be acknowledged by the robot before its publisher goes.
STOP_DELIVERY_S = 1.0
_SPEED = "Hard limit on the commanded"
PARAMS = (
    ParamSpec(
        "output_mode",
        ParamType.STRING,
        "Command output: twist (/cmd_vel), joint_velocity (/joint_commands) or "
        "joint_trajectory (/joint_trajectory)",
        choices=tuple(mode.value for mode in OutputMode),
    ),
    ParamSpec(
        "joint_names",
        ParamType.STRING_ARRAY,
        "Joints in the order joint commands are published (joint modes)",
    ),
    ParamSpec(
        "gripper_joints",
        ParamType.STRING_ARRAY,
        "Finger joints of position-controlled grippers among joint_names: in joint_trajectory "
        "mode their target follows the commanded velocity and a stop holds it, so a grip keeps "
        "its force (the measured position of a closed finger is the object's surface)",
    ),
    ParamSpec("cmd_vel_stamped", ParamType.BOOL, "Publish TwistStamped instead of Twist"),
    ParamSpec("max_linear_speed", ParamType.DOUBLE, f"{_SPEED} linear speed (m/s)", 0.0, 10.0),
    ParamSpec("max_angular_speed", ParamType.DOUBLE, f"{_SPEED} turn rate (rad/s)", 0.0, 20.0),
    ParamSpec(
        "max_joint_velocity", ParamType.DOUBLE, f"{_SPEED} joint velocity (rad/s)", 0.0, 20.0
    ),
    ParamSpec(
        "max_linear_accel", ParamType.DOUBLE, "Limit on linear acceleration (m/s^2)", 0.0, 100.0
    ),
    ParamSpec(
        "max_angular_accel", ParamType.DOUBLE, "Limit on angular acceleration (rad/s^2)", 0.0, 200.0
    ),
    ParamSpec(
        "max_joint_accel", ParamType.DOUBLE, "Limit on joint acceleration (rad/s^2)", 0.0, 200.0
    ),
    ParamSpec(
        "max_linear_brake",
        ParamType.DOUBLE,
        "Limit on linear deceleration (m/s^2) while moving; 0 = unlimited. Stops are immediate",
        0.0,
        100.0,
    ),
    ParamSpec(
        "max_angular_brake",
        ParamType.DOUBLE,
        "Limit on angular deceleration (rad/s^2) while moving; 0 = unlimited. Stops are immediate",
        0.0,
        200.0,
    ),
    ParamSpec(
        "max_joint_brake",
        ParamType.DOUBLE,
        "Limit on joint deceleration (rad/s^2) while moving, for payloads that should not be "
        "stopped dead by a slowdown; 0 = unlimited. Stops are immediate",
        0.0,
        200.0,
    ),
    ParamSpec(
        "uncertainty_slowdown",
        ParamType.DOUBLE,
        "Above this uncertainty the speed is scaled down (units of /vla/uncertainty)",
        0.0,
        1e6,
    ),
    ParamSpec(
        "uncertainty_stop",
        ParamType.DOUBLE,
        "At or above this uncertainty the output is zero (units of /vla/uncertainty)",
        0.0,
        1e6,
    ),
    ParamSpec(
        "watchdog_timeout",
        ParamType.DOUBLE,
        "Seconds without a fresh proposal before the output goes to zero",
        0.01,
        60.0,
    ),
    ParamSpec(
        "watchdog_rate_hz",
        ParamType.DOUBLE,
        "How often the watchdog checks, and stop commands repeat while stopped",
        1.0,
        1000.0,
    ),
)


def _config(values: Mapping[str, Any]) -> SafetyConfig:
    return SafetyConfig.from_values(values)


class SafetyNode(Node):
    def __init__(self, **node_options: Any) -> None:
        super().__init__(NAME, **node_options)
        self.params = ParameterSet(self, PARAMS, NAME, validate=_config, on_change=self.on_params)
        self.governor = SafetyGovernor(_config(self.params.values))
        self.clock = watch_clock(self, self.on_clock_jump_back)
        self.diagnostics = DiagnosticsReporter(self)
        self.faults = FaultLog()
        self.latency = LatencyStats()
        self.joints = JointStateAssembler(self.governor.config.joint_names)
        self.measured_positions: np.ndarray | None = None
        self.trajectory_target = TrajectoryTarget.for_config(self.governor.config)
        self.output: Publisher | None = None
        self.output_key: tuple[OutputMode, bool] | None = None
        problem = self._open_output(
            self.governor.config.output_mode, bool(self.params["cmd_vel_stamped"])
        )
        if problem is not None:
            raise RuntimeError(problem)
        self.scale_publisher = self.create_publisher(Float32, "vla/speed_scale", qos.COMMANDS)
        self.create_subscription(JointState, "vla/proposal", self.on_proposal, qos.LATEST)
        self.create_subscription(String, "vla/instruction", self.on_instruction, qos.LATCHED)
        self.create_subscription(JointState, "joint_states", self.on_joint_state, qos.SENSOR)
        self.create_service(Trigger, "vla/stop", self.on_stop_service)
        self.create_service(Trigger, "vla/resume", self.on_resume_service)
        self.watchdog = self.create_timer(1.0 / self.params["watchdog_rate_hz"], self.on_tick)

    def now(self) -> float:
        return self.clock.now()

    # -- inputs -------------------------------------------------------------------------------
    def on_proposal(self, msg: JointState) -> None:
        arrived = time.perf_counter()
        result = self.governor.on_proposal(proposal_from_message(msg), self.now())
        if isinstance(result, Ignored):
            if self.faults.record(result.reason):
                self.get_logger().warning(f"ignoring proposal: {result.reason}")
            return
        self.apply(result)
        self.latency.add(time.perf_counter() - arrived)

    def on_instruction(self, msg: String) -> None:
        try:
            command = parse_command(msg.data)
        except InvalidCommand:
            return  # the voice node only forwards valid commands; nothing to act on
        if command.is_stop:
            self.apply(self.governor.request_stop("stop command heard", self.now()))
        elif self.governor.resume():
            self.get_logger().info(f"resuming on new command {command.text!r}")

    def on_joint_state(self, msg: JointState) -> None:
        try:
            sample, _ = self.joints.update(
                seconds(msg.header.stamp), msg.name, msg.position, msg.velocity
            )
        except InvalidJointState:
            return  # keep holding the last good positions; joint_state_node reports the fault
        if sample is not None:
            self.measured_positions = sample.positions

    def on_clock_jump_back(self, before: float, after: float) -> None:
        reason = jump_message(before, after)
        self.get_logger().warning(reason)
        self.joints.forget()
        self.apply(self.governor.on_clock_jump_back(after, reason))

    def on_stop_service(self, _: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.apply(self.governor.request_stop("vla/stop called", self.now()))
        response.success = True
        response.message = "stopped; call vla/resume or give a new command to move again"
        return response

    def on_resume_service(self, _: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        was_stopped = self.governor.resume()
        response.success = True
        response.message = "resumed" if was_stopped else "was not stopped"
        self.get_logger().info(f"vla/resume: {response.message}")
        return response

    def on_tick(self) -> None:
        decision = self.governor.on_tick(self.now())
        if decision is not None:
            self.apply(decision)

    def on_params(self, values: Mapping[str, Any], changed: set[str]) -> None:
        """Apply an accepted change (after the set succeeded; see ParameterSet)."""
        config = _config(values)
        # also after a switch that failed: any later change tries again, and stays stopped
        reopen = (config.output_mode, bool(values["cmd_vel_stamped"])) != self.output_key
        if reopen:
            # The last word on the old output, in its own type, is a stop.
            self.publish(self.governor.stop(self.now(), Level.WARN, "output reconfigured"))
            problem = self._open_output(config.output_mode, bool(values["cmd_vel_stamped"]))
            if problem is not None:
                # Nothing of this change is applied, and the robot stays stopped until told.
                self.get_logger().error(f"stopped: {problem}")
                self.apply(self.governor.request_stop(problem, self.now()))
                return
        if config.joint_names != self.governor.config.joint_names:
            self.joints = JointStateAssembler(config.joint_names)
            self.measured_positions = None
        if (config.joint_names, config.gripper_joints) != (
            self.governor.config.joint_names,
            self.governor.config.gripper_joints,
        ):
            self.trajectory_target = TrajectoryTarget.for_config(config)
        self.governor.reconfigure(config)
        if reopen:
            self.apply(self.governor.stop(self.now(), Level.WARN, "output reconfigured"))
        if "watchdog_rate_hz" in changed:
            self.destroy_timer(self.watchdog)
            self.watchdog = self.create_timer(1.0 / values["watchdog_rate_hz"], self.on_tick)

    # -- outputs ------------------------------------------------------------------------------
    def apply(self, decision: Decision) -> None:
        trajectory = self.governor.config.output_mode is OutputMode.JOINT_TRAJECTORY
        if trajectory and not decision.stopped and self.measured_positions is None:
            decision = self.governor.stop(
                self.now(), Level.ERROR, "stopped: no measured joint positions to move from"
            )
        published = self.publish(decision)
        level, reason = decision.level, decision.reason
        if not published:
            level = Level.ERROR
            reason = (
                f"{reason}; publishing nothing: no joint state measured yet, so there is no "
                "position to hold (joint_trajectory mode)"
            )
            if self.faults.record(reason):
                log_at(self.get_logger(), level, reason)
        self.diagnostics.report(
            level,
            reason,
            {
                "speed_scale": decision.speed_scale,
                "output_mode": self.governor.config.output_mode.value,
                "processing_p99_ms": self.latency.summary_ms()["p99_ms"],
            },
        )

    def publish(self, decision: Decision) -> bool:
        """Publish the decision on the current output; False if there was nothing safe to send."""
        mode, stamped = self.output_key
        if mode is OutputMode.TWIST:
            msg = self._twist(decision.velocities, stamped)
        elif mode is OutputMode.JOINT_VELOCITY:
            msg = Float64MultiArray(data=[float(v) for v in decision.velocities])
        else:
            msg = self._trajectory(decision)
            if msg is None:
                return False
        self.output.publish(msg)
        self.scale_publisher.publish(Float32(data=float(decision.speed_scale)))
        return True

    def _twist(self, velocities: np.ndarray, stamped: bool) -> Twist | TwistStamped:
        twist = Twist()
        twist.linear.x, twist.linear.y, twist.linear.z = (float(v) for v in velocities[:3])
        twist.angular.x, twist.angular.y, twist.angular.z = (float(v) for v in velocities[3:])
        if not stamped:
            return twist
        message = TwistStamped(twist=twist)
        message.header.stamp = self.get_clock().now().to_msg()
        return message

    def _trajectory(self, decision: Decision) -> JointTrajectory | None:
        """One point, stamped zero ("start now": a controller on another clock takes it as is).

        None before any joint state: a trajectory with no points is rejected by newer
        joint_trajectory_controllers, and the zero pose would slam the arm.
        """
        positions = self.trajectory_target.positions(decision, self.measured_positions, self.now())
        if positions is None:
            return None
        point = JointTrajectoryPoint(
            positions=[float(p) for p in positions],
            velocities=[float(v) for v in decision.velocities],
            time_from_start=RosDuration(seconds=ACCEL_WINDOW_S).to_msg(),
        )
        return JointTrajectory(joint_names=list(self.governor.config.joint_names), points=[point])

    def _open_output(self, mode: OutputMode, stamped: bool) -> str | None:
        """Publish on the output `mode` names from now on; None, or why it could not be opened
        (the old output is then back in place)."""
        key = (mode, stamped)
        if key == self.output_key:
            return None
        old_key = self.output_key
        if self.output is not None:
            # The stop just published on it must reach the robot before the publisher goes ...
            self.output.wait_for_all_acked(RosDuration(seconds=STOP_DELIVERY_S))
            # ... and it goes first: one process cannot hold one topic under two types at once.
            self.destroy_publisher(self.output)
            self.output = None
        try:
            self.output = self._create_output(key)
            self.output_key = key
            return None
        except Exception as error:  # e.g. this process already has the topic in another type
            if old_key is not None:
                self.output = self._create_output(old_key)
            return (
                f"could not switch the output to {_describe(key)} ({error}); still "
                f"on {_describe(old_key)}: set output_mode / cmd_vel_stamped back or fix the "
                "clash, then call vla/resume"
            )

    def _create_output(self, key: tuple[OutputMode, bool]) -> Publisher:
        mode, stamped = key
        if mode is OutputMode.TWIST:
            kind = TwistStamped if stamped else Twist
            return self.create_publisher(kind, "cmd_vel", qos.COMMANDS)
        if mode is OutputMode.JOINT_VELOCITY:
            return self.create_publisher(Float64MultiArray, "joint_commands", qos.COMMANDS)
        return self.create_publisher(JointTrajectory, "joint_trajectory", qos.COMMANDS)

    def before_shutdown(self) -> None:
        """The last word on the output is a stop command."""
        if self.publish(self.governor.request_stop("shutting down", self.now())):
            self.output.wait_for_all_acked(RosDuration(seconds=STOP_DELIVERY_S))
            self.get_logger().info("published a stop command before shutting down")


def _describe(key: tuple[OutputMode, bool] | None) -> str:
    if key is None:
        return "no output"
    mode, stamped = key
    if mode is OutputMode.TWIST:
        return "cmd_vel (TwistStamped)" if stamped else "cmd_vel (Twist)"
    return "joint_commands" if mode is OutputMode.JOINT_VELOCITY else "joint_trajectory"


def main(args: list[str] | None = None) -> int:
    return run_node(SafetyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
