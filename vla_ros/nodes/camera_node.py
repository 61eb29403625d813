"""camera_node: /camera/image_raw -> checked, converted, resized pictures for the fusion node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import Image

from vla_ros.logic.clock import jump_message
from vla_ros.logic.freshness import StampSequence
from vla_ros.logic.health import FaultLog, Level
from vla_ros.logic.images import (
    ExposureLimits,
    InvalidImage,
    camera_fault,
    converter,
    decode_rgb,
    resize_rgb,
)
from vla_ros.logic.params import ParamSpec, ParamType
from vla_ros.logic.stats import RateMeter
from vla_ros.ros import qos
from vla_ros.ros.clock import watch_clock
from vla_ros.ros.diagnostics import DiagnosticsReporter
from vla_ros.ros.logging import log_at
from vla_ros.ros.messages import empty_image, rgb_image, seconds, to_stamp
from vla_ros.ros.params import ParameterSet
from vla_ros.ros.runner import run_node

NAME = "camera_node"
PARAMS = (
    ParamSpec("image_width", ParamType.INTEGER, "Width the pictures are resized to", 8, 1024),
    ParamSpec("image_height", ParamType.INTEGER, "Height the pictures are resized to", 8, 1024),
    ParamSpec("dark_level", ParamType.INTEGER, "A pixel at or below this is black", 0, 254),
    ParamSpec("bright_level", ParamType.INTEGER, "A pixel at or above this is white", 1, 255),
    ParamSpec(
        "fault_fraction",
        ParamType.DOUBLE,
        "A picture with this fraction of black (or white) pixels is a camera fault",
        0.5,
        1.0,
    ),
)


def _exposure(values: Mapping[str, Any]) -> ExposureLimits:
    return ExposureLimits(values["dark_level"], values["bright_level"], values["fault_fraction"])


class CameraNode(Node):
    def __init__(self, **node_options: Any) -> None:
        super().__init__(NAME, **node_options)
        self.params = ParameterSet(self, PARAMS, NAME, validate=_exposure)
        self.clock = watch_clock(self, self.on_clock_jump_back)
        self.diagnostics = DiagnosticsReporter(self)
        self.faults = FaultLog()
        self.stamps = StampSequence()
        self.rate = RateMeter()
        self.forwarded = 0
        self.unusable = False
        self.converter_reported = False
        self.publisher = self.create_publisher(Image, "vla/image", qos.LATEST)
        self.create_subscription(Image, "camera/image_raw", self.on_image, qos.SENSOR)
        self.create_timer(1.0, self.report)

    def now(self) -> float:
        return self.clock.now()

    def on_clock_jump_back(self, before: float, after: float) -> None:
        # Pictures stamped in the new time must not be refused as "not newer" than old ones.
        self.stamps = StampSequence()
        self._fault_once(jump_message(before, after), Level.WARN)

    def on_image(self, msg: Image) -> None:
        now = self.now()
        stamp = seconds(msg.header.stamp)
        if stamp == 0.0:
            # Unstamped pictures (some drivers) are dated on arrival rather than refused.
            self._fault_once("pictures arrive unstamped; dating them on arrival", Level.OK)
            stamp = now
            msg.header.stamp = to_stamp(now)
        if not self.stamps.advance(stamp):
            return  # a repeat: the fusion node sees the picture age and stops on its own
        try:
            pixels = decode_rgb(msg)
            size = (self.params["image_height"], self.params["image_width"])
            pixels = resize_rgb(pixels, size)
            fault = camera_fault(pixels, _exposure(self.params.values))
            if fault is not None:
                raise InvalidImage(f"camera fault: {fault}")
        except InvalidImage as error:
            self.unusable = True
            self._fault_once(str(error), Level.ERROR)
            self.publisher.publish(empty_image(msg.header))
            return
        self._report_converter()
        if self.unusable:
            self.get_logger().info("sane pictures again")
            self.unusable = False
        self.rate.tick(now)
        self.forwarded += 1
        self.publisher.publish(rgb_image(pixels, msg.header))
        self.diagnostics.report(Level.OK, "forwarding pictures", {"last_age_s": now - stamp})

    def _fault_once(self, reason: str, level: Level) -> None:
        if self.faults.record(reason):
            log_at(self.get_logger(), level, reason)
        self.diagnostics.report(level, reason)

    def _report_converter(self) -> None:
        # A broken cv_bridge loses no picture (rosbags-image converts them), so it is a warning,
        # said once, that stays visible in the diagnostics' values.
        problem = converter().problem
        if problem is not None and not self.converter_reported:
            self.converter_reported = True
            self.get_logger().warning(problem)

    def report(self) -> None:
        now = self.now()
        values = {
            "rate_hz": self.rate.rate(now),
            "forwarded": self.forwarded,
            "refused": self.faults.total,
            "repeated_stamps": self.stamps.repeated,
            "converter": converter().name,
        }
        if converter().problem is not None:
            values["converter_problem"] = converter().problem
        if self.stamps.last is None:
            self.diagnostics.report(Level.WARN, "no picture received yet", values)
        elif now - self.stamps.last > 1.0 and not self.unusable:
            message = f"no new picture for {now - self.stamps.last:.1f} s"
            self.diagnostics.report(Level.WARN, message, values)
        else:
            self.diagnostics.report(self.diagnostics.level, self.diagnostics.message, values)


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
