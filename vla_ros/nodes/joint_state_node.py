"""joint_state_node: joint_states -> finite positions in `joint_names` order, with their freshness.

Velocities that are NaN or missing are unknown, not a fault (ros2_control publishes NaN for
position-only joints). A message naming none of the configured joints comes from another
publisher on the topic (a gripper's) and is ignored without a word.
"""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import JointState

from vla_ros.logic.clock import jump_message
from vla_ros.logic.health import FaultLog, Level
from vla_ros.logic.joints import InvalidJointState, JointStateAssembler
from vla_ros.logic.params import ParamSpec, ParamType
from vla_ros.logic.stats import RateMeter
from vla_ros.ros import qos
from vla_ros.ros.clock import watch_clock
from vla_ros.ros.diagnostics import DiagnosticsReporter
from vla_ros.ros.messages import seconds, to_stamp
from vla_ros.ros.params import ParameterSet
from vla_ros.ros.runner import run_node

NAME = "joint_state_node"
PARAMS = (
    ParamSpec(
        "joint_names",
        ParamType.STRING_ARRAY,
        "The robot's joints in command order; empty = each message's own joints",
    ),
)


class JointStateNode(Node):
    def __init__(self, **node_options: Any) -> None:
        super().__init__(NAME, **node_options)
        self.params = ParameterSet(self, PARAMS, NAME, on_change=self.on_params)
        self.clock = watch_clock(self, self.on_clock_jump_back)
        self.diagnostics = DiagnosticsReporter(self)
        self.faults = FaultLog()
        self.rate = RateMeter()
        self.assembler = JointStateAssembler(tuple(self.params["joint_names"]))
        self.reported_extra: set[str] = set()
        self.foreign_messages = 0
        self.publisher = self.create_publisher(JointState, "vla/joint_states", qos.LATEST)
        self.create_subscription(JointState, "joint_states", self.on_joint_state, qos.SENSOR)
        self.create_timer(1.0, self.report)
        self.diagnostics.report(Level.WARN, "no joint state received yet")

    def on_params(self, values: dict, changed: set[str]) -> None:
        self.assembler = JointStateAssembler(tuple(values["joint_names"]))

    def on_clock_jump_back(self, before: float, after: float) -> None:
        self.assembler.forget()
        reason = jump_message(before, after)
        self.get_logger().warning(reason)
        self.diagnostics.report(Level.WARN, reason)

    def on_joint_state(self, msg: JointState) -> None:
        now = self.clock.now()
        stamp = seconds(msg.header.stamp) or now  # unstamped states are dated on arrival
        try:
            sample, extra = self.assembler.update(stamp, msg.name, msg.position, msg.velocity)
        except InvalidJointState as error:
            reason = f"refused joint state: {error}"
            if self.faults.record(reason):
                self.get_logger().error(reason)
            self.diagnostics.report(Level.ERROR, reason, {"refused": self.faults.total})
            self.publisher.publish(JointState(header=msg.header))  # no joints: nothing usable
            return
        if len(extra) == len(msg.name):
            self.foreign_messages += 1  # another publisher's joints only
            return
        new_extra = set(extra) - self.reported_extra
        if new_extra:
            self.reported_extra |= new_extra
            self.get_logger().info(f"ignoring joints not in joint_names: {sorted(new_extra)}")
        if sample is None:
            missing = self.assembler.missing()
            self.diagnostics.report(Level.WARN, f"waiting for joints {list(missing)}")
            return
        self.rate.tick(now)
        out = JointState(name=list(sample.names), position=sample.positions.tolist())
        out.header.stamp = to_stamp(sample.stamp)
        out.header.frame_id = msg.header.frame_id
        if sample.velocities is not None:
            out.velocity = sample.velocities.tolist()
        self.publisher.publish(out)
        self.diagnostics.report(Level.OK, "forwarding joint states")

    def report(self) -> None:
        now = self.clock.now()
        values = {
            "rate_hz": self.rate.rate(now),
            "refused": self.faults.total,
            "ignored_messages": self.foreign_messages,
            "ignored_joints": ", ".join(sorted(self.reported_extra)) or "none",
        }
        self.diagnostics.report(self.diagnostics.level, self.diagnostics.message, values)


def main(args: list[str] | None = None) -> int:
    return run_node(JointStateNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
