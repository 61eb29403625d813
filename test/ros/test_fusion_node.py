"""The fusion node in the full control graph: proposals, holds on bad input, the model's NaN."""

import math
import shutil
import signal
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from ros_harness import stopped_after, wait_until
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32

from vla_ros.ros import qos

pytestmark = pytest.mark.ros


def seconds(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


def moving(twist):
    return abs(twist.linear.x) > 1e-9 or abs(twist.angular.z) > 1e-9


def is_hold(proposal):
    return len(proposal.name) == 0


def diagnosed(diagnostics, node, text):
    return wait_until(
        lambda: any(
            s.name == f"vla_ros/{node}" and text in s.message
            for a in diagnostics.messages
            for s in a.status
        ),
        timeout=10.0,
    )


@pytest.fixture
def outputs(ros):
    class Outputs:
        proposals = ros.collect(JointState, "/vla/proposal", qos.LATEST)
        uncertainty = ros.collect(Float32, "/vla/uncertainty")
        cmd = ros.collect(Twist, "/cmd_vel")
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")

    return Outputs


@pytest.mark.parametrize("rate_hz", [None, 4.0])
def test_fusion_proposes_at_rate_hz_with_fresh_inputs(control_graph, outputs, rate_hz):
    # its own process, as deployed: in this one, every node shares one interpreter lock
    _, robot = control_graph(fusion={"rate_hz": rate_hz} if rate_hz else None, fusion_process=True)
    expected = rate_hz or 10.0  # the default, from config/vla.yaml
    robot.say("go to the red cube")
    assert outputs.proposals.wait_for(lambda m: not is_hold(m), timeout=60.0) is not None
    assert wait_until(lambda: sum(not is_hold(m) for m in outputs.proposals.messages) >= 12, 30)
    stamps = [seconds(m.header.stamp) for m in outputs.proposals.messages if not is_hold(m)]
    period = float(np.median(np.diff(stamps)))
    assert period == pytest.approx(1 / expected, rel=0.25)
    proposal = next(m for m in outputs.proposals.messages if not is_hold(m))
    assert list(proposal.name) == ["linear_x", "angular_z"]
    assert len(proposal.effort) == 2 and proposal.effort[0] == proposal.effort[1] >= 0
    assert outputs.uncertainty.wait_for(lambda m: math.isfinite(m.data)) is not None
    assert outputs.cmd.wait_for(moving) is not None


def test_no_command_means_no_motion(control_graph, outputs):
    control_graph()
    assert outputs.proposals.wait_for(is_hold, timeout=30.0) is not None
    assert diagnosed(outputs.diagnostics, "fusion_node", "waiting for a command")
    assert outputs.cmd.wait_for() is not None
    assert not any(moving(t) for t in outputs.cmd.messages)


def test_stale_picture_stops_motion_until_fresh_pictures_return(control_graph, outputs):
    _, robot = control_graph(fusion={"max_image_age": 0.3})
    robot.say("go to the red cube")
    assert outputs.cmd.wait_for(moving, timeout=30.0) is not None
    sane = robot.image
    frozen = sane()
    trigger = time.monotonic()
    robot.image = lambda: frozen  # stamps stop advancing
    assert diagnosed(outputs.diagnostics, "fusion_node", "picture is")
    assert stopped_after(outputs.cmd, trigger, lambda t: not moving(t))
    robot.image = sane
    outputs.cmd.clear()
    assert outputs.cmd.wait_for(moving, timeout=10.0) is not None


def test_stale_joint_state_stops_motion(control_graph, outputs):
    _, robot = control_graph(fusion={"max_joint_state_age": 0.3})
    robot.say("go to the red cube")
    assert outputs.cmd.wait_for(moving, timeout=30.0) is not None
    frozen = robot.joints()
    robot.joints = lambda: frozen
    assert diagnosed(outputs.diagnostics, "fusion_node", "joint state is")
    outputs.cmd.clear()
    assert wait_until(lambda: len(outputs.cmd.messages) >= 5)
    assert not any(moving(t) for t in outputs.cmd.messages[2:])


def test_camera_fault_stops_motion_at_once_and_clears(control_graph, outputs):
    _, robot = control_graph()
    robot.say("go to the red cube")
    assert outputs.cmd.wait_for(moving, timeout=30.0) is not None
    sane_pixels = robot.pixels
    robot.pixels = np.zeros_like(sane_pixels)  # lens covered
    assert diagnosed(outputs.diagnostics, "fusion_node", "camera fault")
    outputs.cmd.clear()
    assert wait_until(lambda: len(outputs.cmd.messages) >= 5)
    assert not any(moving(t) for t in outputs.cmd.messages[1:])
    robot.pixels = sane_pixels
    assert outputs.cmd.wait_for(moving, timeout=10.0) is not None


def _bad_image():
    msg = Image(height=96, width=128, encoding="rgb8", step=384, data=b"\x10" * 999)
    return msg


def _nan_joints():
    return JointState(name=["left_wheel_joint", "right_wheel_joint"], position=[math.nan, 0.0])


def _unknown_joints():
    return JointState(name=["antenna"], position=[0.0])


@pytest.mark.parametrize(
    ("feed", "make"),
    [
        ("image", lambda robot: lambda: _stamped(robot, _bad_image())),
        ("image", lambda robot: lambda: _stamped(robot, Image(encoding="rgb8"))),
        ("image", lambda robot: lambda: _stamped(robot, _recoded(robot, "yuv422"))),
        ("joints", lambda robot: lambda: _stamped(robot, _nan_joints())),
        ("joints", lambda robot: lambda: _stamped(robot, _unknown_joints())),
    ],
)
def test_malformed_sensor_input_never_moves_the_robot(control_graph, outputs, feed, make):
    _, robot = control_graph()
    setattr(robot, feed, make(robot))
    robot.say("go to the red cube")
    assert outputs.proposals.wait_for(is_hold, timeout=30.0) is not None
    assert wait_until(lambda: len(outputs.cmd.messages) >= 20, timeout=10.0)
    assert not any(moving(t) for t in outputs.cmd.messages)


@pytest.mark.parametrize("text", ["", "   ", "go " * 40_000])
def test_malformed_commands_never_move_the_robot(control_graph, outputs, text):
    _, robot = control_graph()
    robot.say(text)
    assert wait_until(lambda: len(outputs.cmd.messages) >= 20, timeout=30.0)
    assert not any(moving(t) for t in outputs.cmd.messages)
    assert diagnosed(outputs.diagnostics, "voice_command_node", "refused command")


def _stamped(robot, msg):
    msg.header.stamp = robot.now()
    return msg


def _recoded(robot, encoding):
    msg = robot.sane_image()
    msg.encoding = encoding
    return msg


def test_nan_out_of_the_model_is_never_published(control_graph, outputs, nan_checkpoint):
    _, robot = control_graph(fusion={"checkpoint": str(nan_checkpoint)})
    robot.say("go to the red cube")
    assert diagnosed(outputs.diagnostics, "fusion_node", "NaN")
    assert wait_until(lambda: len(outputs.cmd.messages) >= 20, timeout=10.0)
    assert not any(moving(t) for t in outputs.cmd.messages)
    assert all(is_hold(p) for p in outputs.proposals.messages)
    assert all(math.isfinite(u.data) for u in outputs.uncertainty.messages)


def test_stop_word_stops_within_a_period_and_resume_continues(control_graph, outputs):
    from std_srvs.srv import Trigger

    _, robot = control_graph()
    ros = robot.ros
    robot.say("go to the red cube")
    assert outputs.cmd.wait_for(moving, timeout=30.0) is not None
    trigger = time.monotonic()
    robot.say("Stop!")
    assert stopped_after(outputs.cmd, trigger, lambda t: not moving(t), count=10)
    assert ros.call(Trigger, "/vla/resume", Trigger.Request()).success
    assert outputs.cmd.wait_for(moving, timeout=10.0) is not None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"checkpoint": "/no/such/checkpoint"}, "no checkpoint folder"),
        ({"mc_samples": 1}, "mc_samples"),
        ({"device": "cuda"}, "cuda"),
        ({"device": "tpu"}, "one of"),
        ({"precision": "fp8"}, "one of"),
        ({"precision": "int8"}, "backbone"),  # the shipped checkpoint's small CNN has no backbone
        ({"rate_hz": -1.0}, ""),
    ],
)
def test_invalid_fusion_parameters_are_refused(ros, control_graph, change, reason):
    control_graph(robot=False)
    results = ros.set_parameters("fusion_node", change)
    assert not all(r.successful for r in results)
    assert reason in " ".join(r.reason for r in results)


def test_lifecycle_node_waits_when_autostart_is_false(ros, control_graph, outputs):
    _, robot = control_graph(fusion={"autostart": False})

    def change_state(transition):
        request = ChangeState.Request(transition=Transition(id=transition))
        assert ros.call(ChangeState, "/fusion_node/change_state", request, timeout=30.0).success

    robot.say("go to the red cube")
    assert not wait_until(lambda: outputs.proposals.messages, timeout=2.0)
    change_state(Transition.TRANSITION_CONFIGURE)
    change_state(Transition.TRANSITION_ACTIVATE)
    assert outputs.cmd.wait_for(moving, timeout=30.0) is not None
    # inactive: the loop stops with a hold, and the robot with it
    change_state(Transition.TRANSITION_DEACTIVATE)
    assert is_hold(outputs.proposals.last)
    assert diagnosed(outputs.diagnostics, "fusion_node", "inactive")
    quiet = time.monotonic()
    assert not wait_until(lambda: outputs.proposals.since(quiet), timeout=1.0)
    outputs.cmd.clear()
    assert wait_until(lambda: len(outputs.cmd.messages) >= 10, timeout=5.0)
    assert not any(moving(t) for t in outputs.cmd.messages[-5:])
    change_state(Transition.TRANSITION_ACTIVATE)
    outputs.cmd.clear()
    assert outputs.cmd.wait_for(moving, timeout=30.0) is not None


def test_watchdog_stops_the_robot_when_the_fusion_process_dies(control_graph, outputs):
    fusion, robot = control_graph(fusion_process=True)
    robot.say("go to the red cube")
    assert outputs.cmd.wait_for(moving, timeout=60.0) is not None
    trigger = time.monotonic()
    fusion.send_signal(signal.SIGKILL)
    fusion.wait()
    assert stopped_after(outputs.cmd, trigger, lambda t: not moving(t), count=20)


def proposing(outputs, after):
    """Wait for proposals after `after`, and say whether any of them was a hold."""
    assert wait_until(lambda: len(outputs.proposals.since(after)) >= 8, timeout=30.0)
    return outputs.proposals.since(after)


def test_a_mistyped_checkpoint_path_is_refused_at_once(ros, control_graph, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "mobile").mkdir(parents=True)
    control_graph(robot=False)
    results = ros.set_parameters("fusion_node", {"checkpoint": "runs/mobil"})
    assert not all(r.successful for r in results)
    assert "runs/ is a local folder" in " ".join(r.reason for r in results)


def test_a_checkpoint_that_fails_to_load_leaves_the_running_policy(ros, control_graph, outputs):
    _, robot = control_graph()
    robot.say("go to the red cube")
    assert outputs.proposals.wait_for(lambda m: not is_hold(m), timeout=60.0) is not None
    trigger = time.monotonic()
    # well formed, so accepted; it cannot be fetched here (HF_HUB_OFFLINE), so the load fails
    results = ros.set_parameters("fusion_node", {"checkpoint": "someone/no-such-model"})
    assert all(r.successful for r in results)
    assert diagnosed(outputs.diagnostics, "fusion_node", "cannot load checkpoint")
    assert not any(is_hold(m) for m in proposing(outputs, trigger))
    back = time.monotonic()
    assert all(r.successful for r in ros.set_parameters("fusion_node", {"checkpoint": ""}))
    assert not any(is_hold(m) for m in proposing(outputs, back))


def test_a_new_checkpoint_loads_beside_the_running_policy(ros, control_graph, outputs, tmp_path):
    from vla_ros.model.checkpoint import resolve_checkpoint

    copy = shutil.copytree(resolve_checkpoint(""), tmp_path / "copy")
    log = ros.log()
    _, robot = control_graph()
    robot.say("go to the red cube")
    assert outputs.proposals.wait_for(lambda m: not is_hold(m), timeout=60.0) is not None
    trigger = time.monotonic()
    assert all(r.successful for r in ros.set_parameters("fusion_node", {"checkpoint": str(copy)}))
    assert wait_until(lambda: any(str(copy) in e.msg and "ready" in e.msg for e in log.messages))
    after_swap = time.monotonic()
    assert not any(is_hold(m) for m in outputs.proposals.since(trigger))  # never a gap
    assert not any(is_hold(m) for m in proposing(outputs, after_swap))


def test_a_stale_input_is_logged_once_and_reported_without_flooding(control_graph, outputs):
    _, robot = control_graph(fusion={"max_image_age": 0.3})
    log_collector = robot.ros.log()
    robot.say("go to the red cube")
    assert outputs.cmd.wait_for(moving, timeout=30.0) is not None
    frozen = robot.image()
    robot.image = lambda: frozen  # its age grows at every step: 0.31 s, 0.41 s, ...
    assert diagnosed(outputs.diagnostics, "fusion_node", "picture is")
    started = time.monotonic()
    time.sleep(2.0)  # twenty steps, each with a new age in the reason

    def fusion_stale(msg):
        return any(
            s.name == "vla_ros/fusion_node" and "picture is" in s.message for s in msg.status
        )

    reports = [a for a in outputs.diagnostics.since(started) if fusion_stale(a)]
    assert 1 <= len(reports) <= 4  # the periodic report (1 Hz), not one per step
    assert sum("picture is" in e.msg for e in log_collector.messages) == 1


CHUNKED = {"fusion.kind": "transformer", "chunk.size": 16, "chunk.replan_every": 16}


def test_after_a_hold_the_policy_starts_afresh_on_the_new_picture(
    ros, control_graph, outputs, tmp_path
):
    """A queued action chunk was computed from pictures before the hold: never serve it."""
    from test_fusion_configurations import saved_checkpoint

    from vla_ros.bench.feed import textured_scene
    from vla_ros.logic.images import resize_rgb
    from vla_ros.model import load_policy
    from vla_ros.model.policy import Observation

    checkpoint = saved_checkpoint(tmp_path / "chunked", CHUNKED)
    _, robot = control_graph(fusion={"checkpoint": checkpoint, "max_image_age": 0.3})
    robot.say("go to the red cube")
    assert outputs.proposals.wait_for(lambda m: not is_hold(m), timeout=60.0) is not None
    frozen = robot.image()
    robot.image = lambda: frozen
    held = time.monotonic()
    assert outputs.proposals.wait_for(is_hold, after=held, timeout=5.0) is not None
    new_picture = textured_scene(seed=7)
    robot.pixels = new_picture
    resumed = time.monotonic()
    robot.image = robot.sane_image
    first = outputs.proposals.wait_for(lambda m: not is_hold(m), after=resumed, timeout=10.0)
    assert first is not None
    fresh = load_policy(checkpoint)
    zeros = np.zeros(2, np.float32)
    expected = fresh.select_action(
        Observation(resize_rgb(new_picture, (64, 64)), "go to the red cube", zeros, zeros)
    )
    np.testing.assert_allclose(first.velocity, expected.action, atol=1e-4)
