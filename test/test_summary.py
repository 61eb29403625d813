import json

import pytest

from vla_ros.cli.summary import RunSummary, SpeedAccount


def test_speed_account_splits_time_by_the_scale_in_force():
    account = SpeedAccount()
    for t, scale in [(0.0, 1.0), (0.1, 1.0), (0.2, 0.5), (0.3, 0.0), (0.4, 0.0), (0.5, 1.0)]:
        account.add(t, scale)
    assert account.full == pytest.approx(0.2)
    assert account.slowed == pytest.approx(0.1)
    assert account.stopped == pytest.approx(0.2)


def test_a_long_silence_is_not_counted_as_driving():
    account = SpeedAccount()
    account.add(0.0, 1.0)
    account.add(10.0, 1.0)
    assert account.full == pytest.approx(0.5)


def test_summary_reports_outcome_rate_and_safety_shares():
    summary = RunSummary(command="go to the red cube", scene="mobile")
    summary.proposal_times = [1.0 + 0.1 * i for i in range(51)]
    summary.uncertainties = [0.1, 0.2, 0.3]
    summary.task = {
        "state": "succeeded",
        "target": "red cube",
        "started_at": 1.0,
        "finished_at": 6.5,
    }
    summary.speed.add(0.0, 1.0)
    summary.speed.add(0.4, 0.0)
    summary.speed.add(0.5, 0.0)
    assert summary.loop_rate() == pytest.approx(10.0)
    assert summary.outcome() == "succeeded: reached the red cube in 5.5 s"
    summary.task["kind"] = "pick"
    assert summary.outcome() == "succeeded: picked up the red cube in 5.5 s"
    summary.task.update(kind="place", place="bowl")
    assert summary.outcome() == "succeeded: put the red cube in the bowl in 5.5 s"
    summary.task["kind"] = "go_to"
    text = summary.render()
    assert "loop rate       10.0 Hz" in text
    assert "stopped 0.1 s (20%)" in text
    data = json.loads(summary.to_json())
    assert data["uncertainty_mean"] == pytest.approx(0.2)
    assert data["time_full_speed_s"] == pytest.approx(0.4)


def test_summary_without_any_data_still_renders():
    summary = RunSummary(command="x", scene="arm")
    assert "no task status received" in summary.render()
    assert json.loads(summary.to_json())["loop_rate_hz"] == 0.0
