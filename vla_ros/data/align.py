"""Aligning recorded streams at the control rate, and command messages as action labels.

Streams arrive at their own rates (a camera at 15-30 Hz, joint states at 50-100 Hz, commands at
the controller's rate) and with their own latencies. Training wants one row per control period:
the picture and joint state the controller could have seen at that instant, and the command that
answered it. For a tick at time t:
- observations: the latest message of each stream received at or before t (nothing from the
  future leaks into what the policy sees);
- action: the first command received in [t, t + period), the answer to what was seen at t; if
  none came, the last command still in force (younger than `hold`, as a robot driver holds a
  command for its timeout), else zero (the robot was not being driven).
Times are integer nanoseconds (bag log times), so the ticks of a bag written at exact periods
land exactly on its messages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_HOLD = 0.5  # seconds: the sim node's and the safety node's command timeout


def ticks(start_ns: int, end_ns: int, period: float) -> np.ndarray:
    """Control ticks in [start, end), `period` seconds apart, as int64 nanoseconds."""
    if period <= 0:
        raise ValueError(f"period must be positive, got {period}")
    step = round(period * 1e9)
    return np.arange(start_ns, end_ns, step, dtype=np.int64)


def latest_at(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each time in `at`, the index of the last of the sorted `times` at or before it; -1
    where none is."""
    return np.searchsorted(times, at, side="right") - 1


def command_labels(
    times: np.ndarray,
    values: np.ndarray,
    at: np.ndarray,
    period: float,
    hold: float = DEFAULT_HOLD,
) -> np.ndarray:
    """The action label at each tick (see the module doc): (len(at), channels) float32."""
    values = np.asarray(values, dtype=np.float32)
    values = values[:, None] if values.ndim == 1 else values
    labels = np.zeros((len(at), values.shape[1]), np.float32)
    if len(times) == 0:
        return labels
    period_ns, hold_ns = round(period * 1e9), round(hold * 1e9)
    first = np.searchsorted(times, at, side="left")  # first command at or after the tick
    answered = (first < len(times)) & (times[np.minimum(first, len(times) - 1)] < at + period_ns)
    labels[answered] = values[first[answered]]
    last = latest_at(times, at)
    held = ~answered & (last >= 0) & (at - times[np.maximum(last, 0)] < hold_ns)
    labels[held] = values[last[held]]
    return labels


def order_joints(
    names: Sequence[str], values: Sequence[float], wanted: Sequence[str]
) -> np.ndarray | None:
    """`values` in the order of `wanted` (NaN for a missing value); None if a wanted joint is not
    named (a JointState from another publisher, e.g. a gripper's)."""
    index = {name: i for i, name in enumerate(names)}
    if any(name not in index for name in wanted):
        return None
    out = np.full(len(wanted), np.nan)
    for j, name in enumerate(wanted):
        i = index[name]
        if i < len(values):
            out[j] = values[i]
    return out


def trajectory_velocities(
    point_positions: Sequence[float],
    point_velocities: Sequence[float],
    time_from_start: float,
    measured: np.ndarray,
    min_time: float = 0.1,
) -> np.ndarray:
    """A one-point JointTrajectory as joint velocities: its velocities when it has them, else the
    speed that reaches its positions from the measured ones in `time_from_start` (never less
    than `min_time`, which bounds the speed a near-zero time would imply)."""
    if len(point_velocities):
        return np.asarray(point_velocities, dtype=np.float64)
    positions = np.asarray(point_positions, dtype=np.float64)
    if positions.shape != measured.shape:
        raise ValueError(
            f"trajectory point has {positions.size} positions, the joints {measured.size}"
        )
    return (positions - measured) / max(time_from_start, min_time)
