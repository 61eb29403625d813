"""Sampling recorded streams at the control rate, and commands as action labels."""

import numpy as np
import pytest

from vla_ros.data import align

MS = 1_000_000  # nanoseconds


def test_ticks_are_exact_periods_in_nanoseconds():
    assert align.ticks(0, 350 * MS, 0.1).tolist() == [0, 100 * MS, 200 * MS, 300 * MS]
    with pytest.raises(ValueError, match="positive"):
        align.ticks(0, 1, 0.0)


def test_observations_are_the_latest_at_or_before_each_tick():
    times = np.array([5, 10, 20]) * MS
    assert align.latest_at(times, np.array([0, 5, 15, 25]) * MS).tolist() == [-1, 0, 1, 2]


def test_a_command_answers_the_tick_before_it_and_holds_until_its_timeout():
    times = np.array([30, 110]) * MS
    values = np.array([[1.0], [2.0]])
    at = np.array([0, 100, 200, 300, 700]) * MS
    labels = align.command_labels(times, values, at, period=0.1, hold=0.5)
    # 0: answered at 30 ms; 100: answered at 110 ms; 200, 300: the 110 ms command still holds;
    # 700: older than the hold, the robot was not being driven
    assert labels[:, 0].tolist() == [1.0, 2.0, 2.0, 2.0, 0.0]


def test_no_commands_mean_zero_labels():
    labels = align.command_labels(np.zeros(0, np.int64), np.zeros((0, 2)), np.arange(3), 0.1)
    assert labels.shape == (3, 2) and not labels.any()


def test_joints_are_put_in_order_and_foreign_states_refused():
    ordered = align.order_joints(["b", "a", "c"], [2.0, 1.0, 3.0], ["a", "b"])
    assert ordered.tolist() == [1.0, 2.0]
    assert align.order_joints(["gripper"], [0.1], ["a", "b"]) is None
    assert np.isnan(align.order_joints(["a", "b"], [1.0], ["a", "b"])[1])  # missing value


def test_trajectory_points_become_velocities():
    measured = np.array([0.0, 1.0])
    with_velocities = align.trajectory_velocities([], [0.5, -0.5], 0.1, measured)
    assert with_velocities.tolist() == [0.5, -0.5]
    towards = align.trajectory_velocities([1.0, 1.0], [], 2.0, measured)
    assert towards.tolist() == [0.5, 0.0]
    capped = align.trajectory_velocities([1.0, 1.0], [], 0.0, measured, min_time=0.1)
    assert capped.tolist() == [10.0, 0.0]
    with pytest.raises(ValueError, match="positions"):
        align.trajectory_velocities([1.0], [], 1.0, measured)
