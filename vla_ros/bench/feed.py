"""A generated robot: camera pictures and joint states published at fixed rates.

Drives the control graph without a simulator or a robot, for benchmarks and tests. Each feed
is a callable producing the next message, so a caller can freeze, blank or corrupt it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from vla_ros.ros import qos
from vla_ros.ros.messages import rgb_image


def textured_scene(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """Random texture (never a camera fault) with a red block in the left half."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(40, 200, size=(height, width, 3), dtype=np.uint8)
    rgb[height // 3 : 2 * height // 3, width // 4 : width // 2] = (220, 30, 30)
    return rgb


class SyntheticRobot:
    """Publishes from `node` what a robot publishes; swap `image` or `joints` to change a feed."""

    def __init__(
        self,
        node: Node,
        joint_names: Sequence[str] = ("left_wheel_joint", "right_wheel_joint"),
        camera_hz: float = 15.0,
        joints_hz: float = 20.0,
    ) -> None:
        self.node = node
        self.joint_names = list(joint_names)
        self.pixels = textured_scene()
        self.image: Callable[[], Image] = self.sane_image
        self.joints: Callable[[], JointState] = self.sane_joints
        self.camera = node.create_publisher(Image, "camera/image_raw", qos.SENSOR)
        self.joint_states = node.create_publisher(JointState, "joint_states", qos.SENSOR)
        self.voice = node.create_publisher(String, "voice_command", qos.COMMANDS)
        node.create_timer(1.0 / camera_hz, lambda: self.camera.publish(self.image()))
        node.create_timer(1.0 / joints_hz, lambda: self.joint_states.publish(self.joints()))

    def stamp_now(self, msg: Image | JointState) -> Image | JointState:
        msg.header.stamp = self.node.get_clock().now().to_msg()
        return msg

    def sane_image(self) -> Image:
        return self.stamp_now(rgb_image(self.pixels, Image().header))

    def sane_joints(self) -> JointState:
        zeros = [0.0] * len(self.joint_names)
        return self.stamp_now(JointState(name=self.joint_names, position=zeros, velocity=zeros))

    def say(self, text: str) -> None:
        self.voice.publish(String(data=text))
