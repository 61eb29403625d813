"""camera_node, voice_command_node and joint_state_node in a real rclpy graph."""

import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import serialize_message
from ros_harness import publish_until, wait_until
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from vla_ros.nodes.camera_node import CameraNode
from vla_ros.nodes.joint_state_node import JointStateNode
from vla_ros.nodes.voice_command_node import VoiceCommandNode
from vla_ros.ros import qos

pytestmark = pytest.mark.ros


def reported(diagnostics, node, text, level):
    """Whether the node reported `text` at `level` on /diagnostics (waiting for it)."""

    def check():
        return any(
            status.name == f"vla_ros/{node}"
            and text in status.message
            and status.level == bytes([level])
            for array in diagnostics.messages
            for status in array.status
        )

    return wait_until(check)


def logged_times(log, text):
    return sum(text in entry.msg for entry in log.messages)


# -- camera ----------------------------------------------------------------------------------
def camera_image(ros, pixels, encoding="bgr8", stamp=None, data=None):
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding)
    msg.step = pixels.shape[1] * (pixels.shape[2] if pixels.ndim == 3 else 1)
    msg.data = pixels.tobytes() if data is None else data
    msg.header.stamp = stamp or ros.probe.get_clock().now().to_msg()
    return msg


def scene(height=120, width=160):
    """A grey room with a red object on the left (as BGR, the way many drivers send it)."""
    bgr = np.full((height, width, 3), 90, np.uint8)
    bgr[:, : width // 4] = (0, 0, 220)
    return bgr


@pytest.fixture
def camera(ros):
    out = ros.collect(Image, "/vla/image", qos.LATEST)
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    log = ros.log()
    ros.add(CameraNode)
    return out, diagnostics, log, ros.publisher(Image, "/camera/image_raw", qos.SENSOR)


def test_pictures_are_converted_to_rgb_and_resized_for_the_model(ros, camera):
    out, _, _, raw = camera
    assert publish_until(raw, lambda: camera_image(ros, scene()), lambda: out.messages)
    msg = out.wait_for(lambda m: m.width > 0)
    assert msg is not None
    assert (msg.height, msg.width, msg.encoding) == (64, 64, "rgb8")
    pixels = np.frombuffer(bytes(msg.data), np.uint8).reshape(64, 64, 3)
    assert tuple(pixels[32, 2]) == (220, 0, 0)  # red on the left, now in RGB order
    assert tuple(pixels[32, 40]) == (90, 90, 90)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda ros: camera_image(ros, scene(), encoding="yuv422"), "unsupported encoding"),
        (lambda ros: camera_image(ros, scene(), data=b"\x01" * 1000), "data has 1000 bytes"),
        (lambda ros: Image(header=camera_image(ros, scene()).header), "empty image"),
        (lambda ros: camera_image(ros, np.zeros((120, 160, 3), np.uint8)), "blank picture"),
        (lambda ros: camera_image(ros, np.full((120, 160, 3), 255, np.uint8)), "saturated"),
    ],
)
def test_bad_pictures_are_refused_logged_once_reported_and_invalidate(ros, camera, make, reason):
    out, diagnostics, log, raw = camera
    assert publish_until(raw, lambda: make(ros), lambda: out.messages)
    for _ in range(2):
        raw.publish(make(ros))
    assert all(m.width == 0 and m.height == 0 for m in out.messages)  # "nothing usable"
    assert reported(diagnostics, "camera_node", reason, level=2)
    assert wait_until(lambda: logged_times(log, reason) >= 1)
    assert logged_times(log, reason) == 1
    raw.publish(camera_image(ros, scene()))  # still alive, and recovers with sane input
    assert out.wait_for(lambda m: m.width == 64) is not None


def test_repeated_stamps_are_not_forwarded(ros, camera):
    out, _, _, raw = camera
    assert wait_until(lambda: raw.get_subscription_count() > 0)
    frozen = ros.probe.get_clock().now().to_msg()
    for _ in range(4):
        raw.publish(camera_image(ros, scene(), stamp=frozen))
    assert out.wait_for() is not None
    assert not wait_until(lambda: len(out.messages) > 1, timeout=0.5)


# -- voice -----------------------------------------------------------------------------------
@pytest.fixture
def voice(ros):
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    log = ros.log()
    ros.add(VoiceCommandNode)
    return diagnostics, log, ros.publisher(String, "/voice_command", qos.COMMANDS)


def test_commands_are_normalised_and_latched_for_late_joiners(ros, voice):
    _, _, publisher = voice
    assert wait_until(lambda: publisher.get_subscription_count() > 0)
    publisher.publish(String(data="  Go to   the RED cube "))
    late = ros.collect(String, "/vla/instruction", qos.LATCHED)
    assert late.wait_for(lambda m: m.data == "go to the red cube") is not None


def test_a_stop_word_in_a_sentence_becomes_stop(ros, voice):
    _, _, publisher = voice
    out = ros.collect(String, "/vla/instruction", qos.LATCHED)
    assert wait_until(lambda: publisher.get_subscription_count() > 0)
    publisher.publish(String(data="Robot, please HALT right now"))
    assert out.wait_for(lambda m: m.data == "stop") is not None


def _serialized(text_bytes: bytes) -> bytes:
    template = serialize_message(String(data="x" * len(text_bytes)))
    return template[:8] + text_bytes + template[8 + len(text_bytes) :]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (String(data=""), "empty command"),
        (String(data="   "), "empty command"),
        (String(data="go " * 34_000), "exceeds"),
        (_serialized(b"go to \xff\xfe the cube"), "not valid UTF-8"),
    ],
)
def test_bad_commands_are_refused_logged_once_and_reported(ros, voice, payload, reason):
    diagnostics, log, publisher = voice
    out = ros.collect(String, "/vla/instruction", qos.LATCHED)
    assert wait_until(lambda: publisher.get_subscription_count() > 0)
    for _ in range(3):
        publisher.publish(payload)
    assert reported(diagnostics, "voice_command_node", reason, level=1)
    assert wait_until(lambda: logged_times(log, reason) >= 1)
    assert logged_times(log, reason) == 1
    assert out.messages == []
    publisher.publish(String(data="turn left"))  # still alive
    assert out.wait_for(lambda m: m.data == "turn left") is not None


# -- joints ----------------------------------------------------------------------------------
@pytest.fixture
def joints(ros):
    out = ros.collect(JointState, "/vla/joint_states", qos.LATEST)
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    log = ros.log()
    ros.add(JointStateNode, {"joint_names": ["shoulder", "elbow"]})
    return out, diagnostics, log, ros.publisher(JointState, "/joint_states", qos.SENSOR)


def joint_state(ros, names, positions, velocities=()):
    msg = JointState(name=names, position=positions, velocity=list(velocities))
    msg.header.stamp = ros.probe.get_clock().now().to_msg()
    return msg


def test_joint_states_are_reordered_and_extra_joints_ignored(ros, joints):
    out, _, _, publisher = joints
    message = lambda: joint_state(ros, ["gripper", "elbow", "shoulder"], [0.0, 2.0, 1.0])  # noqa: E731
    assert publish_until(publisher, message, lambda: out.messages)
    msg = out.wait_for(lambda m: len(m.name) > 0)
    assert list(msg.name) == ["shoulder", "elbow"]
    assert list(msg.position) == [1.0, 2.0]


@pytest.mark.parametrize(
    ("names", "positions", "reason"),
    [
        (["shoulder", "elbow"], [math.nan, 0.0], "not finite"),
        (["shoulder", "elbow"], [0.0, math.inf], "not finite"),
        (["antenna", "tail"], [0.0, 0.0], "none of the configured joints"),
        (["shoulder", "elbow"], [0.0], "1 positions for 2"),
    ],
)
def test_bad_joint_states_are_refused_logged_once_and_invalidate(
    ros, joints, names, positions, reason
):
    out, diagnostics, log, publisher = joints
    assert publish_until(
        publisher, lambda: joint_state(ros, names, positions), lambda: out.messages
    )
    for _ in range(2):
        publisher.publish(joint_state(ros, names, positions))
    assert all(len(m.name) == 0 for m in out.messages)
    assert reported(diagnostics, "joint_state_node", reason, level=2)
    assert wait_until(lambda: logged_times(log, reason) >= 1)
    assert logged_times(log, reason) == 1
    publisher.publish(joint_state(ros, ["shoulder", "elbow"], [0.1, 0.2]))
    assert out.wait_for(lambda m: len(m.name) == 2) is not None
