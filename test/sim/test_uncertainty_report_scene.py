"""The uncertainty report on a simulator scene's data: how often the safety node, at that scene's
configured thresholds, would slow the robot down or stop it, per condition."""

import io

import numpy as np

from vla_ros import graph
from vla_ros.learn.collect import collect
from vla_ros.learn.dataset import iter_episodes
from vla_ros.learn.replay import replay
from vla_ros.learn.uncertainty_report import IMAGE_CORRUPTIONS, uncertainty_report
from vla_ros.model import load_policy


def test_the_uncertainty_report_says_how_often_the_safety_node_would_slow_down_and_stop(
    tmp_path, small_camera
):
    collect("humanoid", tmp_path / "data", 2, camera_size=small_camera, progress=False)
    stream = io.StringIO()
    report = uncertainty_report("humanoid", tmp_path / "data", stream=stream)
    safety = graph.scene_parameters("humanoid", "safety_node")
    assert report["configured_thresholds"] == {
        "slowdown": safety["uncertainty_slowdown"],
        "stop": safety["uncertainty_stop"],
    }
    for condition in report["conditions"].values():
        assert 0 <= condition["fraction_stopped"] <= condition["fraction_slowed_or_stopped"] <= 1
    # The same steps replayed here, judged at the configured thresholds.
    episodes = list(iter_episodes(tmp_path / "data"))
    u, _ = replay(
        load_policy("humanoid"), episodes, image_transform=IMAGE_CORRUPTIONS["blackout"]
    ).first
    blackout = report["conditions"]["blackout"]
    assert blackout["fraction_slowed_or_stopped"] == np.mean(u > safety["uncertainty_slowdown"])
    assert blackout["fraction_stopped"] == np.mean(u >= safety["uncertainty_stop"])
    assert "slowed, stopped: share of steps" in stream.getvalue()
