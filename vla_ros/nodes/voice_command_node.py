"""voice_command_node: /voice_command -> the normalised instruction, latched for late joiners.

Stop words become the instruction `stop`, which the safety node acts on at once.
"""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from std_msgs.msg import String

from vla_ros.logic.commands import InvalidCommand, parse_command
from vla_ros.logic.health import FaultLog, Level
from vla_ros.logic.params import ParamSpec, ParamType
from vla_ros.ros import qos
from vla_ros.ros.diagnostics import DiagnosticsReporter
from vla_ros.ros.messages import cdr_string_bytes
from vla_ros.ros.params import ParameterSet
from vla_ros.ros.runner import run_node

NAME = "voice_command_node"
PARAMS = (
    ParamSpec("max_length", ParamType.INTEGER, "Longest command accepted, in characters", 1, 10000),
)


class VoiceCommandNode(Node):
    def __init__(self, **node_options: Any) -> None:
        super().__init__(NAME, **node_options)
        self.params = ParameterSet(self, PARAMS, NAME)
        self.diagnostics = DiagnosticsReporter(self)
        self.faults = FaultLog()
        self.accepted = 0
        self.publisher = self.create_publisher(String, "vla/instruction", qos.LATCHED)
        # Raw bytes, so text that is not UTF-8 is refused here instead of failing in rclpy.
        self.create_subscription(String, "voice_command", self.on_command, qos.COMMANDS, raw=True)
        self.diagnostics.report(Level.OK, "waiting for a command")

    def on_command(self, raw: bytes) -> None:
        try:
            command = parse_command(cdr_string_bytes(raw), self.params["max_length"])
        except (InvalidCommand, ValueError) as error:
            reason = f"refused command: {error}"
            if self.faults.record(reason):
                self.get_logger().warning(reason)
            self.diagnostics.report(Level.WARN, reason, {"refused": self.faults.total})
            return
        self.accepted += 1
        self.publisher.publish(String(data=command.text))
        self.get_logger().info(f"command: {command.text!r}")
        level = Level.WARN if command.is_stop else Level.OK
        self.diagnostics.report(
            level, f"command: {command.text}", {"accepted": self.accepted, "last": command.text}
        )


def main(args: list[str] | None = None) -> int:
    return run_node(VoiceCommandNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
