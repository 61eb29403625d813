"""A robot stand-in for tests: the probe publishing camera pictures and joint states."""

import numpy as np
from ros_harness import Repeater, wait_until
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from vla_ros.ros import qos

WHEELS = ["left_wheel_joint", "right_wheel_joint"]


def textured_scene(height=96, width=128, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(40, 200, size=(height, width, 3), dtype=np.uint8)
    rgb[height // 3 : 2 * height // 3, width // 4 : width // 2] = (220, 30, 30)
    return rgb


class RobotStandIn:
    """The probe publishing what a robot publishes: camera pictures and joint states.

    Each feed can be swapped at run time (`image`, `joints` are callables making the message),
    to stop, freeze or corrupt it.
    """

    def __init__(self, ros, camera_hz=15.0, joints_hz=20.0):
        self.ros = ros
        self.pixels = textured_scene()
        self.image = self.sane_image
        self.joints = self.sane_joints
        self.camera = ros.publisher(Image, "/camera/image_raw", qos.SENSOR)
        self.joint_states = ros.publisher(JointState, "/joint_states", qos.SENSOR)
        self.voice = ros.publisher(String, "/voice_command", qos.COMMANDS)
        Repeater(ros, self.camera, lambda: self.image(), camera_hz)
        Repeater(ros, self.joint_states, lambda: self.joints(), joints_hz)

    def now(self):
        return self.ros.probe.get_clock().now().to_msg()

    def sane_image(self):
        msg = Image(height=96, width=128, encoding="rgb8", step=128 * 3)
        msg.data = self.pixels.tobytes()
        msg.header.stamp = self.now()
        return msg

    def sane_joints(self):
        msg = JointState(name=WHEELS, position=[0.1, 0.2], velocity=[0.0, 0.0])
        msg.header.stamp = self.now()
        return msg

    def say(self, text):
        assert wait_until(lambda: self.voice.get_subscription_count() > 0)
        self.voice.publish(String(data=text))
