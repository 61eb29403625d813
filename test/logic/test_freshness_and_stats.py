import math

import pytest

from vla_ros.logic.freshness import StampSequence, age_problem
from vla_ros.logic.health import FaultLog
from vla_ros.logic.stats import LatencyStats, RateMeter


def test_fresh_input_has_no_problem():
    assert age_problem(stamp=9.8, now=10.0, max_age=0.5, what="picture") is None


def test_old_input_is_stale_with_its_age():
    assert "picture is 1.00 s old" in age_problem(9.0, 10.0, 0.5, "picture")


def test_input_from_the_future_is_refused():
    assert "future" in age_problem(12.0, 10.0, 0.5, "joint state")


def test_stamps_must_advance():
    sequence = StampSequence()
    assert sequence.advance(1.0)
    assert sequence.advance(1.1)
    assert not sequence.advance(1.1)
    assert not sequence.advance(0.5)
    assert sequence.repeated == 2
    assert sequence.last == 1.1


def test_rate_meter_measures_events_per_second_over_its_window():
    meter = RateMeter(window=1.0)
    for i in range(11):
        meter.tick(i * 0.1)
    assert meter.rate(1.0) == pytest.approx(10.0)
    assert meter.rate(5.0) == 0.0


def test_latency_percentiles():
    stats = LatencyStats(capacity=100)
    assert all(math.isnan(value) for value in stats.summary_ms().values())
    for ms in range(1, 101):
        stats.add(ms / 1000)
    summary = stats.summary_ms()
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert summary["max_ms"] == pytest.approx(100.0)


def test_fault_log_reports_each_reason_once_and_counts_all():
    log = FaultLog()
    assert log.record("blank picture")
    assert not log.record("blank picture")
    assert log.record("bad encoding")
    assert log.total == 3
