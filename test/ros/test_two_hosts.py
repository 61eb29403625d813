"""The fusion node on one host, the safety node and the simulator on another: a network partition
between them stops the robot within the watchdog, and healing it lets the robot move again."""

import pytest

from vla_ros.bench.partition import HostsUnavailable, measure_partitions

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_a_partition_stops_the_robot_within_the_watchdog_and_healing_resumes(tmp_path):
    try:
        result = measure_partitions(cuts=1, watchdog_timeout=0.5, log_dir=tmp_path)
    except HostsUnavailable as reason:
        pytest.skip(f"cannot make two hosts on this machine: {reason}")
    summary = result.summary()
    assert summary["cuts"] == 1
    assert summary["stop_latency_max_s"] <= summary["bound_s"], (summary, tmp_path)  # ROS time
    assert summary["stayed_stopped_while_cut"], summary
    assert summary["resume_median_s"] < 30.0, summary  # moving again once the link is back
