"""A node's ROS time, watched for backward jumps (see vla_ros.logic.clock)."""

from __future__ import annotations

from collections.abc import Callable

from rclpy.node import Node

from vla_ros.logic.clock import ClockWatch


def watch_clock(node: Node, on_jump_back: Callable[[float, float], None]) -> ClockWatch:
    """A ClockWatch over the node's clock (ROS time: /clock when use_sim_time is set)."""
    return ClockWatch(lambda: node.get_clock().now().nanoseconds * 1e-9, on_jump_back)
