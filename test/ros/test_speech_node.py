"""speech_node in a real rclpy graph: WAV files in, text on /voice_command, stops that stop."""

import json
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from ros_harness import wait_until
from std_msgs.msg import String

from vla_ros.nodes.speech_node import SpeechNode
from vla_ros.ros import qos

pytestmark = pytest.mark.ros

DATA = Path(__file__).resolve().parents[1] / "data" / "speech"
MANIFEST = {entry["file"]: entry for entry in json.loads((DATA / "manifest.json").read_text())}


def status(diagnostics, predicate):
    return wait_until(
        lambda: any(
            s.name == "vla_ros/speech_node" and predicate(s)
            for a in diagnostics.messages
            for s in a.status
        ),
        timeout=20.0,
    )


def values(s):
    return {kv.key: kv.value for kv in s.values}


@pytest.fixture
def speech(ros):
    voice = ros.collect(String, "/voice_command", qos.COMMANDS)
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    log = ros.log()
    return voice, diagnostics, log


def test_a_wav_command_is_published_with_what_was_heard_on_diagnostics(ros, speech):
    voice, diagnostics, _ = speech
    ros.add(SpeechNode, {"wav": str(DATA / "go_to_the_red_cube.wav"), "wav_delay": 0.5})
    assert voice.wait_for(timeout=30.0) is not None
    assert [m.data for m in voice.messages] == ["go to the red cube"]
    assert status(
        diagnostics,
        lambda s: (
            s.level == bytes([0])
            and values(s).get("heard") == "go to the red cube"
            and 0 < float(values(s)["confidence"]) <= 1
        ),
    )


def test_a_wav_stop_says_stop_and_why(ros, speech):
    voice, diagnostics, _ = speech
    ros.add(SpeechNode, {"wav": str(DATA / "stop.wav"), "wav_delay": 0.5})
    assert voice.wait_for(timeout=30.0) is not None
    assert {m.data for m in voice.messages} == {"stop"}
    assert status(diagnostics, lambda s: s.level == bytes([1]) and "heard 'stop'" in s.message)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"RIFF\x10\x00\x00\x00WAVEjunkjunk", "not a readable WAV"),
        (None, "sample rate 44100 Hz"),
    ],
)
def test_a_bad_wav_file_is_reported_logged_once_and_the_node_lives_on(
    ros, speech, tmp_path, content, reason
):
    from vla_ros.speech.audio import read_wav, write_wav

    voice, diagnostics, log = speech
    bad = tmp_path / "bad.wav"
    if content is None:
        write_wav(bad, read_wav(DATA / "stop.wav"), sample_rate=44100)
    else:
        bad.write_bytes(content)
    node = ros.add(SpeechNode, {"wav": str(bad), "wav_delay": 0.0})
    assert status(diagnostics, lambda s: s.level == bytes([2]) and reason in s.message)
    assert wait_until(lambda: sum(reason in e.msg for e in log.messages) == 1)
    # Set it again: still alive, the reason is not logged twice, and a good file still plays.
    assert all(r.successful for r in ros.set_parameters("speech_node", {"wav": str(bad)}))
    time.sleep(0.5)
    assert sum(reason in e.msg for e in log.messages) == 1
    assert all(
        r.successful for r in ros.set_parameters("speech_node", {"wav": str(DATA / "stop.wav")})
    )
    assert voice.wait_for(lambda m: m.data == "stop", timeout=30.0) is not None
    assert node.faults.total >= 2


def test_an_invalid_setting_is_refused(ros, speech):
    ros.add(SpeechNode, {"wav": ""})
    results = ros.set_parameters("speech_node", {"vad_end_db": 30.0, "vad_start_db": 6.0})
    assert not results[0].successful and "vad_end_db" in results[0].reason


def moving(twist):
    return abs(twist.linear.x) > 1e-9 or abs(twist.angular.z) > 1e-9


def test_spoken_go_moves_the_robot_and_spoken_stop_stops_it(ros, control_graph):
    """WAV -> speech_node -> /voice_command -> voice, fusion, safety nodes -> /cmd_vel."""
    cmd = ros.collect(Twist, "/cmd_vel")
    voice = ros.collect(String, "/voice_command", qos.COMMANDS)
    control_graph()
    ros.add(SpeechNode, {"wav": ""})
    assert all(
        r.successful
        for r in ros.set_parameters("speech_node", {"wav": str(DATA / "go_to_the_red_cube.wav")})
    )
    assert voice.wait_for(lambda m: m.data == "go to the red cube", timeout=30.0) is not None
    assert cmd.wait_for(moving, timeout=30.0) is not None  # moving before the stop

    assert all(
        r.successful for r in ros.set_parameters("speech_node", {"wav": str(DATA / "stop.wav")})
    )
    played = time.monotonic()
    word_end = played + MANIFEST["stop.wav"]["stop_end"]
    assert voice.wait_for(lambda m: m.data == "stop", timeout=10.0) is not None
    stopped_at = next(t for t, m in voice.items if m.data == "stop")
    # Only what follows the stop counts: from one control period (0.1 s) after it on, the
    # robot is told to stand still, and stays so.
    assert wait_until(lambda: len([1 for t, _ in cmd.items if t > stopped_at + 0.1]) >= 10)
    after = [m for t, m in cmd.items if t > stopped_at + 0.1]
    assert not any(moving(m) for m in after)
    first_still = next(t for t, m in cmd.items if t > stopped_at and not moving(m))
    print(
        f"end of 'stop' -> /voice_command {1000 * (stopped_at - word_end):.0f} ms, "
        f"-> still /cmd_vel {1000 * (first_still - word_end):.0f} ms"
    )
