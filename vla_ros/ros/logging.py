"""Logging a fault at the level it has, from any one place in a node."""

from __future__ import annotations

from rclpy.impl.rcutils_logger import RcutilsLogger

from vla_ros.logic.health import Level


def log_at(logger: RcutilsLogger, level: Level, message: str) -> None:
    """Log `message` at `level`.

    rclpy fixes the severity of each calling line on its first use and raises ValueError ("Logger
    severity cannot be changed between calls") if that line later logs at another: a node that
    picked `.error` or `.info` into one call would die on its second kind of fault. Each level
    therefore has a line of its own here.
    """
    if level >= Level.ERROR:
        logger.error(message)
    elif level is Level.WARN:
        logger.warning(message)
    else:
        logger.info(message)
