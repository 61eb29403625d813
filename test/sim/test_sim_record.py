"""`vla-ros record` on a live graph: `vla-ros sim --expert` drives, the recorder writes a bag,
rosbags reads it back, `vla-ros train --bags` learns from it; and signals end it cleanly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from polling import wait_until
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from vla_ros.data.bags import read_bag, typestore
from vla_ros.ros import qos
from vla_ros.ros.messages import seconds

pytestmark = [pytest.mark.ros, pytest.mark.slow]

BIN = Path(sys.executable).parent
EPISODES = 5
TASK = "go to the red cube"  # one task: a few episodes are then enough to learn from


def _env(domain_id: int) -> dict[str, str]:
    return {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "PYTHONUNBUFFERED": "1"}


def _start_recorder(out: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    recorder = subprocess.Popen(
        [str(BIN / "vla-ros"), "record", "--out", str(out), "--scene", "mobile", *extra],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Its subscriptions exist once it says it records (they may still be discovered later).
    for line in recorder.stdout:
        if "recording to" in line:
            return recorder
    raise AssertionError(f"the recorder ended before recording: {recorder.communicate()[0]}")


def _messages(path: Path) -> dict[str, list]:
    """Every message of the bag by topic, read back with rosbags alone: (type, time, message)."""
    found: dict[str, list] = {}
    with AnyReader([path], default_typestore=typestore()) as reader:
        for connection, stamp, raw in reader.messages():
            found.setdefault(connection.topic, []).append(
                (connection.msgtype, stamp, reader.deserialize(raw, connection.msgtype))
            )
    return found


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Expert episodes through ROS, recorded; the last one judged failed with a key."""
    folder = tmp_path_factory.mktemp("record")
    env = _env(197)  # a simulator test's domain (150-199) that no other test here uses
    recorder = _start_recorder(folder / "bag", env)
    sim = subprocess.run(
        [
            str(BIN / "vla-ros"),
            "sim",
            "--expert",
            "--episodes",
            str(EPISODES),
            "--duration",
            "15",
            "--command",
            TASK,
            "--log-dir",
            str(folder / "logs"),
            "--record",
            str(folder / "expert.mp4"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    recorder.stdin.write("f\n")  # after the last "stop": that take failed
    recorder.stdin.flush()
    time.sleep(0.5)
    recorder.send_signal(signal.SIGINT)
    output, _ = recorder.communicate(timeout=30)
    assert sim.returncode == 0, sim.stdout + sim.stderr
    assert recorder.returncode == 0, output
    return folder / "bag", sim.stdout, output


def test_the_bag_reads_back_with_rosbags_with_types_counts_and_marks(recorded):
    path, sim_output, recorder_output = recorded
    assert f"{EPISODES}/{EPISODES} succeeded" in sim_output, sim_output
    # --record kept the camera view of every episode as a video too.
    video = path.parent / "expert.mp4"
    assert f"recording       {video}" in sim_output and video.stat().st_size > 10_000
    messages = _messages(path)
    types = {topic: items[0][0] for topic, items in messages.items()}
    assert types == {
        "/camera/image_raw": "sensor_msgs/msg/Image",
        "/joint_states": "sensor_msgs/msg/JointState",
        "/cmd_vel": "geometry_msgs/msg/Twist",
        "/voice_command": "std_msgs/msg/String",
        "/vla/episode": "std_msgs/msg/String",
    }
    said = [m.data for _, _, m in messages["/voice_command"]]
    assert len(said) == 2 * EPISODES and said[1::2] == ["stop"] * EPISODES, said
    marks = [json.loads(m.data) for _, _, m in messages["/vla/episode"]]
    assert [(m["event"], m["episode"]) for m in marks] == [
        *[(kind, n) for n in range(1, EPISODES + 1) for kind in ("start", "end")],
        ("outcome", EPISODES),
    ]
    assert [m["task"] for m in marks if m["event"] == "start"] == said[0::2] == [TASK] * EPISODES
    assert {m["reason"] for m in marks if m["event"] == "end"} == {"stop_word"}
    assert marks[-1]["outcome"] == "failed"
    # The sim stamps pictures at 15 Hz and joint states at 50 Hz of its time: a message lost on
    # the way would leave a gap in the stamps (the machine's load may slow the sim, not them).
    for topic, rate in (("/camera/image_raw", 15), ("/joint_states", 50)):
        stamps = np.array([seconds(m.header.stamp) for _, _, m in messages[topic]])
        expected = round((stamps[-1] - stamps[0]) * rate) + 1
        # (on a machine loaded far beyond its cores a best-effort picture can still be lost)
        assert len(stamps) >= 0.98 * expected, (topic, len(stamps), expected)
    pixels = messages["/camera/image_raw"][0][2]
    assert (pixels.width, pixels.height, pixels.encoding) == (320, 240, "rgb8")
    assert f"{EPISODES} ({EPISODES - 1} unmarked, 1 failed)" in recorder_output, recorder_output


def test_the_recorded_episodes_are_the_experts_commands_at_the_control_rate(recorded):
    path, _, _ = recorded
    bag = read_bag(path)
    assert len(bag.spans) == EPISODES and len(bag.episodes) == EPISODES - 1
    assert bag.skipped == [f"episode {EPISODES}: marked failed"]
    for episode in bag.episodes:
        assert episode.images.shape[1:] == (64, 64, 3)
        # the expert drives forward and turns while its task runs, and holds still at the end
        assert episode.actions[:, 0].max() > 0.2
        assert np.all(episode.actions[-3:] == 0)


def test_train_on_recorded_bags_lowers_the_validation_loss(recorded, tmp_path):
    path, _, _ = recorded
    result = subprocess.run(
        [
            str(BIN / "vla-ros"),
            "train",
            "--bags",
            str(path),
            "--out",
            str(tmp_path / "checkpoint"),
            "--epochs",
            "20",
            "--set",
            "uncertainty.ensemble=1",
            "--set",
            "uncertainty.error_model=false",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads((tmp_path / "checkpoint" / "loss.json").read_text())
    assert len(losses["heldout"]) == 20
    # against the same network before its first step (measured 0.25 -> 0.04 in 25 epochs)
    assert losses["heldout"][-1] < 0.8 * losses["untrained"], losses
    assert (tmp_path / "checkpoint" / "loss.png").is_file()
    assert (tmp_path / "checkpoint_data" / "meta.json").is_file()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_recording_leaves_a_readable_bag(ros, tmp_path, sig):
    recorder = _start_recorder(tmp_path / "bag", _env(ros.domain_id), "--no-keys")
    images = ros.publisher(Image, "/camera/image_raw", qos.SENSOR)
    joints = ros.publisher(JointState, "/joint_states", 10)
    voice = ros.publisher(String, "/voice_command", qos.COMMANDS)
    publishers = (images, joints, voice)
    assert wait_until(lambda: all(p.get_subscription_count() for p in publishers), 30.0)
    voice.publish(String(data="go to the red cube"))
    for step in range(30):
        image = Image(height=4, width=4, encoding="rgb8", step=12, data=bytes([step] * 48))
        images.publish(image)
        joints.publish(JointState(name=["a"], position=[float(step)]))
        time.sleep(0.02)
    time.sleep(0.5)
    recorder.send_signal(sig)
    output, _ = recorder.communicate(timeout=20)
    assert recorder.returncode == 0, output
    messages = _messages(tmp_path / "bag")
    # Best effort may lose the first sample or two while discovery completes; none after that,
    # up to the last one sent before the signal.
    for topic, value in (
        ("/camera/image_raw", lambda m: int(m.data[0])),
        ("/joint_states", lambda m: int(m.position[0])),
    ):
        steps = [value(m) for _, _, m in messages[topic]]
        assert steps == list(range(steps[0], 30)) and len(steps) >= 25, (topic, steps)
    marks = [json.loads(m.data) for _, _, m in messages["/vla/episode"]]
    # the episode in progress is closed on the way out
    assert [(m["event"], m.get("reason")) for m in marks] == [
        ("start", None),
        ("end", "shutdown"),
    ]


def test_vla_stop_on_the_safety_node_ends_the_episode(ros, tmp_path):
    from std_srvs.srv import Trigger

    from vla_ros.nodes.safety_node import SafetyNode

    recorder = _start_recorder(tmp_path / "bag", _env(ros.domain_id), "--no-keys")
    ros.add(SafetyNode)
    voice = ros.publisher(String, "/voice_command", qos.COMMANDS)
    assert wait_until(lambda: voice.get_subscription_count() > 0, 30.0)
    assert wait_until(lambda: ros.probe.count_subscribers("/diagnostics") > 0, 30.0)
    voice.publish(String(data="go to the red cube"))
    time.sleep(1.0)  # the safety node has reported on /diagnostics (a watchdog stop, not ours)
    assert ros.call(Trigger, "/vla/stop", Trigger.Request()).success
    time.sleep(1.0)
    recorder.send_signal(signal.SIGINT)
    output, _ = recorder.communicate(timeout=20)
    assert recorder.returncode == 0, output
    marks = [json.loads(m.data) for _, _, m in _messages(tmp_path / "bag")["/vla/episode"]]
    assert [(m["event"], m.get("reason")) for m in marks] == [
        ("start", None),
        ("end", "stop_service"),
    ]
