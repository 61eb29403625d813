"""Each node executable from the venv starts on its own with --ros-args parameters and remaps."""

import signal

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import publish_until, wait_until
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from vla_ros import graph
from vla_ros.bench.feed import textured_scene
from vla_ros.ros import qos
from vla_ros.ros.messages import rgb_image

pytestmark = pytest.mark.ros


def resized_size(ros, raw, out) -> tuple[int, int]:
    """Publish fresh pictures on `raw` until the camera node forwards one on `out`; its size."""

    def picture():
        msg = rgb_image(textured_scene(), Image().header)
        msg.header.stamp = ros.probe.get_clock().now().to_msg()
        return msg

    assert publish_until(raw, picture, lambda: out.messages)
    image = out.wait_for(lambda m: m.width > 0)
    return image.width, image.height


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_camera_node(ros, sig):
    out = ros.collect(Image, "/model/image", qos.LATEST)
    raw = ros.publisher(Image, "/front/image", qos.SENSOR)
    process = ros.start(
        "camera_node",
        [
            "-p",
            "image_width:=32",
            "-p",
            "image_height:=24",
            "-r",
            "/camera/image_raw:=/front/image",
            "-r",
            "/vla/image:=/model/image",
        ],
    )

    assert resized_size(ros, raw, out) == (32, 24)
    ros.stop(process, sig)
    assert process.returncode == 0


def test_values_given_beside_the_config_file_win_over_it(ros):
    """config/vla.yaml has a `/**` section and a camera_node one; what the CLI gives must win."""
    out = ros.collect(Image, "/vla/image", qos.LATEST)
    raw = ros.publisher(Image, "/camera/image_raw", qos.SENSOR)
    arguments = graph.ros_arguments(
        [graph.scene_config("mobile")],
        {"image_width": 32, "image_height": 24},
        node="camera_node",
    )
    process = ros.start("camera_node", arguments[1:])

    assert resized_size(ros, raw, out) == (32, 24)
    ros.stop(process)


def test_voice_command_node(ros):
    out = ros.collect(String, "/vla/instruction", qos.LATCHED)
    speech = ros.publisher(String, "/speech", qos.COMMANDS)
    process = ros.start(
        "voice_command_node", ["-p", "max_length:=12", "-r", "/voice_command:=/speech"]
    )
    assert wait_until(lambda: speech.get_subscription_count() > 0, 30.0)
    speech.publish(String(data="go to the red cube"))  # 18 characters: over max_length
    speech.publish(String(data="Turn LEFT"))
    assert out.wait_for(lambda m: m.data == "turn left") is not None
    assert all(m.data != "go to the red cube" for m in out.messages)
    ros.stop(process)
    assert process.returncode == 0


def test_joint_state_node(ros):
    out = ros.collect(JointState, "/vla/joint_states", qos.LATEST)
    joints = ros.publisher(JointState, "/robot/joint_states", qos.SENSOR)
    process = ros.start(
        "joint_state_node",
        ["-p", "joint_names:=[b, a]", "-r", "/joint_states:=/robot/joint_states"],
    )

    def joint_state():
        msg = JointState(name=["a", "b", "c"], position=[1.0, 2.0, 3.0])
        msg.header.stamp = ros.probe.get_clock().now().to_msg()
        return msg

    assert publish_until(joints, joint_state, lambda: out.messages)
    state = out.wait_for(lambda m: len(m.name) > 0)
    assert list(state.name) == ["b", "a"] and list(state.position) == [2.0, 1.0]
    ros.stop(process)
    assert process.returncode == 0


def test_fusion_node(ros):
    proposals = ros.collect(JointState, "/fusion/proposal", qos.LATEST)
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    process = ros.start(
        "fusion_node", ["-p", "rate_hz:=4.0", "-r", "/vla/proposal:=/fusion/proposal"]
    )
    # without inputs it proposes no motion, at its rate, and says why
    assert proposals.wait_for(lambda m: len(m.name) == 0, timeout=60.0) is not None
    assert wait_until(
        lambda: any(
            "target_rate_hz" in {kv.key: kv.value for kv in s.values}
            and {kv.key: kv.value for kv in s.values}["target_rate_hz"] == "4"
            for a in diagnostics.messages
            for s in a.status
            if s.name == "vla_ros/fusion_node"
        ),
        timeout=10.0,
    )
    ros.stop(process)
    assert process.returncode == 0


def test_a_bad_start_up_value_ends_the_node_with_the_reason(ros):
    process = ros.start(
        "safety_node", ["-p", "uncertainty_slowdown:=0.9", "-p", "uncertainty_stop:=0.5"]
    )
    output, _ = process.communicate(timeout=30.0)
    assert process.returncode == 2
    assert "must be below" in output
