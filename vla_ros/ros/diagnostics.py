"""Publishing a node's health on /diagnostics: at once when it changes, and every period."""

from __future__ import annotations

from collections.abc import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from vla_ros.logic.health import Level, fault_key
from vla_ros.ros.qos import COMMANDS

# Relative, like every topic of the package: under a namespace each robot reports on its own.
TOPIC = "diagnostics"


class DiagnosticsReporter:
    """One DiagnosticStatus per node, named `vla_ros/<node name>`."""

    def __init__(self, node: Node, period: float = 1.0) -> None:
        self._node = node
        self._publisher = node.create_publisher(DiagnosticArray, TOPIC, COMMANDS)
        self._name = f"vla_ros/{node.get_name()}"
        self._level = Level.STALE
        self._message = "starting"
        self._values: dict[str, str] = {}
        node.create_timer(period, self.publish)

    @property
    def level(self) -> Level:
        return self._level

    @property
    def message(self) -> str:
        return self._message

    def report(self, level: Level, message: str, values: Mapping[str, object] = ()) -> None:
        """Set the current status; publishes right away if the level or the kind of message changed.

        A message that differs only in its numbers (an age that grows) is the same status: it is
        published with the next periodic report, not at every step.
        """
        changed = (level, fault_key(message)) != (self._level, fault_key(self._message))
        self._level, self._message = level, message
        if values:
            self._values.update({key: _text(value) for key, value in dict(values).items()})
        if changed:
            self.publish()

    def publish(self) -> None:
        status = DiagnosticStatus(
            level=bytes([int(self._level)]),
            name=self._name,
            message=self._message,
            hardware_id=self._node.get_fully_qualified_name(),
            values=[KeyValue(key=k, value=v) for k, v in self._values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array)


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
