"""camera_node, voice_command_node and joint_state_node in a real rclpy graph."""

import math
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import serialize_message
from ros_harness import Repeater, publish_until, wait_until
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header, String

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


def test_an_unstamped_picture_then_a_camera_fault_does_not_end_the_node(ros, camera):
    """Both are logged from one place at two severities, which rclpy refuses per call site."""
    out, diagnostics, log, raw = camera
    unstamped = Time()
    assert publish_until(
        raw, lambda: camera_image(ros, scene(), stamp=unstamped), lambda: out.messages
    )
    dark = np.zeros((120, 160, 3), np.uint8)
    trigger = time.monotonic()
    assert publish_until(
        raw,
        lambda: camera_image(ros, dark, stamp=unstamped),
        lambda: out.wait_for(lambda m: m.width == 0, after=trigger, timeout=0.1),
    )
    assert reported(diagnostics, "camera_node", "blank picture", level=2)
    assert wait_until(lambda: logged_times(log, "unstamped") == 1)
    recovered = time.monotonic()
    assert publish_until(
        raw,
        lambda: camera_image(ros, scene(), stamp=unstamped),
        lambda: out.wait_for(lambda m: m.width == 64, after=recovered, timeout=0.1),
    )


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


def joint_diagnostics(diagnostics, after):
    return [
        status
        for array in diagnostics.since(after)
        for status in array.status
        if status.name == "vla_ros/joint_state_node"
    ]


def test_ros2_control_nan_velocities_and_a_gripper_publisher_do_not_block_the_arm(ros, joints):
    """joint_state_broadcaster: NaN velocity and effort for position-only joints; a gripper
    driver publishing its own joints on the same topic at 50 Hz."""
    out, diagnostics, _, publisher = joints

    def arm():
        msg = joint_state(ros, ["elbow", "shoulder"], [2.0, 1.0], [math.nan, math.nan])
        msg.effort = [math.nan, math.nan]
        return msg

    Repeater(ros, publisher, arm, 50.0)
    Repeater(ros, publisher, lambda: joint_state(ros, ["finger"], [0.01], [0.0]), 50.0)
    assert out.wait_for(lambda m: len(m.name) == 2, timeout=10.0) is not None
    watched = time.monotonic()
    assert wait_until(lambda: len(out.since(watched)) >= 40)
    forwarded = out.since(watched)
    assert all(list(m.name) == ["shoulder", "elbow"] for m in forwarded)  # never empty
    assert all(list(m.position) == [1.0, 2.0] and not m.velocity for m in forwarded)
    assert wait_until(lambda: joint_diagnostics(diagnostics, watched))
    assert all(s.level == b"\x00" for s in joint_diagnostics(diagnostics, watched))


@pytest.mark.parametrize("node", ["camera", "joints"])
def test_input_nodes_follow_ros_time_back_after_a_jump(ros, node):
    """After a simulator reset, inputs stamped in the new time flow again at once."""
    from rosgraph_msgs.msg import Clock

    from vla_ros.ros.messages import to_stamp

    sim_time = [500.0]
    clock = ros.publisher(Clock, "/clock", 10)

    def tick():
        sim_time[0] += 0.01
        clock.publish(Clock(clock=to_stamp(sim_time[0])))

    ros.probe.create_timer(0.01, tick)
    if node == "camera":
        out = ros.collect(Image, "/vla/image", qos.LATEST)
        ros.add(CameraNode, {"use_sim_time": True})
        raw = ros.publisher(Image, "/camera/image_raw", qos.SENSOR)
        make = lambda: camera_image(ros, scene(), stamp=to_stamp(sim_time[0]))  # noqa: E731
    else:
        out = ros.collect(JointState, "/vla/joint_states", qos.LATEST)
        ros.add(JointStateNode, {"use_sim_time": True, "joint_names": ["shoulder"]})
        raw = ros.publisher(JointState, "/joint_states", qos.SENSOR)
        make = lambda: JointState(  # noqa: E731
            header=Header(stamp=to_stamp(sim_time[0])),
            name=["shoulder"],
            position=[0.3],
        )
    Repeater(ros, raw, make, 20.0)
    assert out.wait_for(timeout=10.0) is not None
    sim_time[0] -= 100.0
    trigger = time.monotonic()

    def new_time(msg):
        return msg.header.stamp.sec < 450 and (msg.width > 0 if node == "camera" else msg.name)

    assert out.wait_for(new_time, after=trigger, timeout=5.0) is not None
