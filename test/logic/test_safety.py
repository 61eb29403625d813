import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vla_ros.logic.health import Level
from vla_ros.logic.safety import (
    TWIST_AXES,
    Decision,
    Ignored,
    InvalidProposal,
    OutputMode,
    Proposal,
    SafetyConfig,
    SafetyGovernor,
    TrajectoryTarget,
    clamp_preserving_direction,
    limit_acceleration,
    map_channels,
    speed_scale,
)

BASE = {
    "output_mode": "twist",
    "joint_names": [],
    "max_linear_speed": 0.5,
    "max_angular_speed": 1.0,
    "max_joint_velocity": 1.0,
    "max_linear_accel": 100.0,
    "max_angular_accel": 100.0,
    "max_joint_accel": 100.0,
    "max_linear_brake": 0.0,
    "max_angular_brake": 0.0,
    "max_joint_brake": 0.0,
    "uncertainty_slowdown": 0.2,
    "uncertainty_stop": 0.6,
    "watchdog_timeout": 0.5,
}


def config(**changes):
    return SafetyConfig.from_values({**BASE, **changes})


def twist(linear_x, angular_z, uncertainty=0.0, stamp=1.0):
    return Proposal(stamp, ("linear_x", "angular_z"), np.array([linear_x, angular_z]), uncertainty)


# -- speed scaling ---------------------------------------------------------------------------
def test_scale_is_one_at_or_below_slowdown_and_zero_at_or_above_stop():
    assert speed_scale(0.0, 0.2, 0.6) == 1.0
    assert speed_scale(0.2, 0.2, 0.6) == 1.0
    assert speed_scale(0.6, 0.2, 0.6) == 0.0
    assert speed_scale(5.0, 0.2, 0.6) == 0.0
    assert speed_scale(0.4, 0.2, 0.6) == pytest.approx(0.5)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_uncertainty_means_stop(value):
    assert speed_scale(value, 0.2, 0.6) == 0.0


# Thresholds and uncertainties over the whole finite range, with explicit examples at the
# boundaries and inside the band so that no property depends on the search finding them.
thresholds = st.tuples(
    st.floats(0, 1e6, allow_nan=False), st.floats(1e-6, 1e6, allow_nan=False)
).map(lambda pair: (pair[0], pair[0] + pair[1]))
uncertainties = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e7, max_value=1e7)


@given(thresholds, uncertainties)
@example((0.2, 0.6), 0.2)
@example((0.2, 0.6), 0.6)
@example((0.2, 0.6), 0.0)
@example((0.25, 2.2), 2.2)
@example((0.25, 2.2), 0.25)
@example((0.0, 1e-6), 1e-6)
def test_scale_is_one_at_or_below_slowdown_zero_at_or_above_stop_and_in_unit_interval(
    limits, uncertainty
):
    slowdown, stop = limits
    scale = speed_scale(uncertainty, slowdown, stop)
    assert 0.0 <= scale <= 1.0
    if uncertainty <= slowdown:
        assert scale == 1.0
    if uncertainty >= stop:
        assert scale == 0.0
    if slowdown < uncertainty < stop:
        assert scale > 0.0


@given(thresholds, uncertainties, uncertainties)
@example((0.2, 0.6), 0.3, 0.5)  # inside the band: the higher one must not scale faster
@example((0.2, 0.6), 0.21, 0.59)
@example((0.25, 2.2), 1.0, 2.0)
@example((0.2, 0.6), 0.1, 0.4)  # across the slowdown threshold
@example((0.2, 0.6), 0.4, 0.7)  # across the stop threshold
def test_scale_never_rises_with_uncertainty(limits, u1, u2):
    slowdown, stop = limits
    low, high = sorted((u1, u2))
    assert speed_scale(high, slowdown, stop) <= speed_scale(low, slowdown, stop)


@pytest.mark.parametrize(
    ("uncertainty", "expected"),
    [(0.3, 0.75), (0.4, 0.5), (0.5, 0.25), (0.59, 0.025)],
)
def test_scale_falls_linearly_inside_the_band(uncertainty, expected):
    assert speed_scale(uncertainty, 0.2, 0.6) == pytest.approx(expected)


# -- limits ----------------------------------------------------------------------------------
def test_clamp_keeps_direction_and_respects_every_limit():
    out = clamp_preserving_direction(np.array([1.0, 0.5]), np.array([0.5, 1.0]))
    np.testing.assert_allclose(out, [0.5, 0.25])


def test_clamp_leaves_commands_within_limits_alone():
    v = np.array([0.1, -0.2])
    np.testing.assert_array_equal(clamp_preserving_direction(v, np.array([1.0, 1.0])), v)


def test_zero_limit_forces_zero_without_nan():
    out = clamp_preserving_direction(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    np.testing.assert_array_equal(out, [0.0, 0.0])


speeds = st.floats(-50, 50, allow_nan=False, allow_subnormal=False)
vectors = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.lists(speeds, min_size=n, max_size=n),
        st.lists(st.floats(0, 5, allow_nan=False), min_size=n, max_size=n),
    )
)


@given(vectors)
@example(([1.0, 0.5], [0.5, 1.0]))
@example(([-3.0, 0.1, 2.0], [1.0, 1.0, 1.0]))
def test_clamping_never_exceeds_a_limit_and_keeps_the_direction(case):
    values, limits = (np.array(v) for v in case)
    out = clamp_preserving_direction(values, limits)
    assert np.all(np.abs(out) <= limits + 1e-12)
    # the same direction: a non-negative multiple of the input, at most the input itself
    largest = int(np.argmax(np.abs(values)))
    factor = float(out[largest] / values[largest]) if values[largest] else 0.0
    assert 0.0 <= factor <= 1.0 + 1e-12
    np.testing.assert_allclose(out, values * factor, atol=1e-9)


channel_values = st.floats(-5, 5, allow_nan=False, allow_subnormal=False)
accel_cases = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.lists(channel_values, min_size=n, max_size=n),  # target
        st.lists(channel_values, min_size=n, max_size=n),  # previous
        st.lists(st.floats(0, 20, allow_nan=False), min_size=n, max_size=n),  # accel
        st.lists(st.floats(0, 20, allow_nan=False), min_size=n, max_size=n),  # brake, 0 = none
        st.floats(-1.0, 1.0, allow_nan=False),  # dt, including negative (a clock jump)
    )
)


def speed_up(previous, out):
    """How much each channel moved away from zero (crossing zero counts from zero)."""
    crossed = np.sign(previous) * np.sign(out) < 0
    return np.where(crossed, np.abs(out), np.maximum(np.abs(out) - np.abs(previous), 0.0))


@given(accel_cases)
@example(([0.5, 1.0], [0.0, 0.0], [1.0, 3.0], [0.0, 0.0], 0.1))  # from rest, two limits
@example(([-1.0], [0.5], [1.0], [0.0], 0.1))  # a reversal: its second half is a speed-up
@example(([0.5, 0.0], [0.0, 1.0], [1.0, 3.0], [0.0, 0.0], 0.1))  # one speeds up, one brakes
def test_acceleration_limiting_never_speeds_a_channel_up_faster_than_its_limit(case):
    target, previous, accel, brake, dt = (*(np.array(v) for v in case[:4]), case[4])
    brake_limits = np.where(brake > 0, brake, np.inf)
    out = limit_acceleration(target, previous, accel, dt, brake_limits)
    window = min(max(dt, 0.0), 0.1)
    assert np.all(speed_up(previous, out) <= accel * window + 1e-9)
    slowed = np.where(np.sign(previous) * np.sign(out) >= 0, np.abs(previous) - np.abs(out), 0)
    assert np.all((slowed <= brake * window + 1e-9) | (brake == 0))  # 0: braking unlimited
    # on the straight line from previous to target: the whole change scaled, never bent
    change = target - previous
    largest = int(np.argmax(np.abs(change)))
    if change[largest]:
        fraction = float((out[largest] - previous[largest]) / change[largest])
        assert -1e-9 <= fraction <= 1.0 + 1e-9
        np.testing.assert_allclose(out, previous + fraction * change, atol=1e-9)


@given(accel_cases)
def test_a_change_that_only_brakes_is_never_held_back_without_a_braking_limit(case):
    target, previous, accel, _, dt = (*(np.array(v) for v in case[:4]), case[4])
    braking_only = np.sign(target) * np.sign(previous) >= 0
    target = np.where(braking_only & (np.abs(target) <= np.abs(previous)), target, 0.0)
    out = limit_acceleration(target, previous, accel, dt)
    np.testing.assert_allclose(out, target)


def test_speeding_up_from_rest_keeps_the_curvature():
    out = limit_acceleration(np.array([0.5, 1.0]), np.zeros(2), np.array([1.0, 3.0]), dt=0.1)
    np.testing.assert_allclose(out, [0.1, 0.2])  # per channel it would be [0.1, 0.3]


def test_a_braking_limit_spreads_slowing_down():
    one = np.array([1.0])
    out = limit_acceleration(np.array([0.0]), one, one, dt=0.1, brake_limits=np.array([2.0]))
    np.testing.assert_allclose(out, [0.8])


def test_acceleration_is_limited_but_braking_is_not():
    limits = np.array([1.0])
    sped_up = limit_acceleration(np.array([1.0]), np.array([0.0]), limits, dt=0.1)
    np.testing.assert_allclose(sped_up, [0.1])
    braked = limit_acceleration(np.array([0.0]), np.array([1.0]), limits, dt=0.1)
    np.testing.assert_allclose(braked, [0.0])
    reversed_ = limit_acceleration(np.array([-1.0]), np.array([0.5]), limits, dt=0.1)
    np.testing.assert_allclose(reversed_, [-0.1])


def test_a_long_gap_does_not_allow_a_bigger_jump():
    out = limit_acceleration(np.array([1.0]), np.array([0.0]), np.array([1.0]), dt=5.0)
    np.testing.assert_allclose(out, [0.1])


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"max_linear_speed": -0.1}, "max_linear_speed"),
        ({"uncertainty_slowdown": 0.6}, "must be below"),
        ({"uncertainty_slowdown": 0.9}, "must be below"),
        ({"output_mode": "teleport"}, "unknown output_mode"),
        ({"output_mode": "joint_velocity", "joint_names": []}, "needs joint_names"),
        ({"joint_names": ["a", "a"]}, "distinct"),
        ({"joint_names": ["a"], "gripper_joints": ["finger"]}, "not among joint_names"),
        ({"watchdog_timeout": 0.0}, "watchdog_timeout"),
        ({"max_angular_speed": math.nan}, "max_angular_speed"),
    ],
)
def test_invalid_configurations_are_refused_with_a_reason(changes, reason):
    with pytest.raises(ValueError, match=reason):
        config(**changes)


def test_channels_follow_the_output_mode():
    assert config().channels == TWIST_AXES
    joints = config(output_mode="joint_velocity", joint_names=["j1", "j2"])
    assert joints.output_mode is OutputMode.JOINT_VELOCITY
    assert joints.channels == ("j1", "j2")


# -- proposals -------------------------------------------------------------------------------
def test_proposal_channels_are_mapped_by_name():
    out = map_channels(twist(0.3, -0.2), TWIST_AXES)
    np.testing.assert_array_equal(out, [0.3, 0, 0, 0, 0, -0.2])


@pytest.mark.parametrize(
    ("proposal", "reason"),
    [
        (Proposal(1.0, ("linear_x", "warp"), np.array([0.1, 0.1]), 0.0), "does not have"),
        (Proposal(1.0, ("linear_x",), np.array([0.1, 0.2]), 0.0), "2 velocities for 1"),
        (Proposal(1.0, ("linear_x",), np.array([math.nan]), 0.0), "NaN"),
    ],
)
def test_unusable_proposals_are_refused(proposal, reason):
    with pytest.raises(InvalidProposal, match=reason):
        map_channels(proposal, TWIST_AXES)


# -- the governor ----------------------------------------------------------------------------
def moving(decision):
    assert isinstance(decision, Decision)
    return not decision.stopped


def test_confident_proposal_passes_at_full_speed_within_limits():
    governor = SafetyGovernor(config())
    decision = governor.on_proposal(twist(2.0, 0.5), now=1.0)
    assert moving(decision) and decision.speed_scale == 1.0 and decision.level is Level.OK
    assert decision.velocities[0] == pytest.approx(0.5)  # clamped to max_linear_speed
    assert decision.velocities[5] == pytest.approx(0.125)  # same direction


def test_uncertain_proposal_is_slowed_then_stopped():
    governor = SafetyGovernor(config())
    slowed = governor.on_proposal(twist(0.4, 0.0, uncertainty=0.4, stamp=1.0), now=1.0)
    assert moving(slowed) and slowed.speed_scale == pytest.approx(0.5)
    assert slowed.velocities[0] == pytest.approx(0.2)
    assert slowed.level is Level.WARN and "slowed" in slowed.reason
    stopped = governor.on_proposal(twist(0.4, 0.0, uncertainty=0.6, stamp=1.1), now=1.1)
    assert stopped.stopped and not stopped.velocities.any()


def test_nan_in_the_proposal_stops():
    governor = SafetyGovernor(config())
    decision = governor.on_proposal(twist(math.nan, 0.0), now=1.0)
    assert decision.stopped and decision.level is Level.ERROR


def test_a_hold_proposal_stops():
    governor = SafetyGovernor(config())
    decision = governor.on_proposal(Proposal(1.0, (), np.array([]), math.inf), now=1.0)
    assert decision.stopped and "no motion" in decision.reason


def test_stale_or_repeated_proposals_are_ignored():
    governor = SafetyGovernor(config())
    assert isinstance(governor.on_proposal(twist(0.1, 0, stamp=0.0), now=1.0), Ignored)
    assert isinstance(governor.on_proposal(twist(0.1, 0, stamp=5.0), now=1.0), Ignored)
    assert moving(governor.on_proposal(twist(0.1, 0, stamp=1.0), now=1.0))
    assert isinstance(governor.on_proposal(twist(0.1, 0, stamp=1.0), now=1.1), Ignored)


def test_watchdog_stops_when_proposals_cease_and_recovers_when_they_return():
    governor = SafetyGovernor(config())
    assert governor.on_tick(0.0).stopped  # nothing received yet
    assert moving(governor.on_proposal(twist(0.1, 0, stamp=1.0), now=1.0))
    assert governor.on_tick(1.4) is None
    expired = governor.on_tick(1.6)
    assert (
        expired.stopped and expired.level is Level.ERROR and "no fresh proposal" in expired.reason
    )
    assert governor.on_tick(3.0).stopped  # and keeps stopping
    assert moving(governor.on_proposal(twist(0.1, 0, stamp=3.0), now=3.0))


def test_stop_latches_until_resume():
    governor = SafetyGovernor(config())
    assert governor.request_stop("test", now=1.0).stopped
    assert governor.on_proposal(twist(0.1, 0, stamp=1.1), now=1.1).stopped
    assert governor.on_tick(1.2).stopped
    assert governor.resume() is True
    assert moving(governor.on_proposal(twist(0.1, 0, stamp=1.3), now=1.3))
    assert governor.resume() is False


def test_motion_ramps_up_after_a_stop():
    governor = SafetyGovernor(config(max_linear_accel=1.0))
    first = governor.on_proposal(twist(0.5, 0, stamp=1.0), now=1.0)
    assert first.velocities[0] == pytest.approx(0.1)
    second = governor.on_proposal(twist(0.5, 0, stamp=1.1), now=1.1)
    assert second.velocities[0] == pytest.approx(0.2)
    governor.request_stop("x", now=1.2)
    governor.resume()
    again = governor.on_proposal(twist(0.5, 0, stamp=1.3), now=1.3)
    assert again.velocities[0] == pytest.approx(0.1)


def test_joint_velocity_mode_limits_each_joint():
    governor = SafetyGovernor(
        config(output_mode="joint_velocity", joint_names=["a", "b", "c"], max_joint_velocity=0.5)
    )
    proposal = Proposal(1.0, ("c", "a"), np.array([2.0, -1.0]), 0.0)
    decision = governor.on_proposal(proposal, now=1.0)
    np.testing.assert_allclose(decision.velocities, [-0.25, 0.0, 0.5])


def test_reconfiguring_channels_restarts_from_rest():
    governor = SafetyGovernor(config())
    governor.on_proposal(twist(0.3, 0, stamp=1.0), now=1.0)
    governor.reconfigure(config(output_mode="joint_velocity", joint_names=["a"]))
    decision = governor.on_proposal(Proposal(1.1, ("a",), np.array([0.5]), 0.0), now=1.1)
    assert decision.velocities.shape == (1,)


def test_ros_time_jumping_back_stops_and_lets_proposals_in_the_new_time_through():
    governor = SafetyGovernor(config())
    assert moving(governor.on_proposal(twist(0.1, 0, stamp=100.0), now=100.0))
    jump = governor.on_clock_jump_back(70.0, "ROS time jumped back")
    assert jump.stopped and "jumped back" in jump.reason
    stopped = governor.on_tick(70.05)
    assert stopped.stopped and "jumped back" in stopped.reason  # keeps stopping, says why
    assert moving(governor.on_proposal(twist(0.1, 0, stamp=70.1), now=70.1))  # new time
    assert governor.on_tick(70.15) is None


def test_before_the_jump_a_proposal_in_the_new_time_is_ignored():
    governor = SafetyGovernor(config())
    governor.on_proposal(twist(0.1, 0, stamp=100.0), now=100.0)
    assert isinstance(governor.on_proposal(twist(0.1, 0, stamp=70.0), now=100.05), Ignored)


def test_trajectory_target_holds_the_positions_measured_when_the_stop_began():
    target = TrajectoryTarget()
    stop = Decision(np.zeros(2), 0.0, True, Level.WARN, "stopped")
    move = Decision(np.array([0.5, 0.0]), 1.0, False, Level.OK, "moving")
    assert target.positions(stop, None) is None  # nothing measured: nothing to point at
    np.testing.assert_allclose(target.positions(move, np.array([0.0, 1.0])), [0.05, 1.0])
    np.testing.assert_allclose(target.positions(stop, np.array([0.1, 1.0])), [0.1, 1.0])
    np.testing.assert_allclose(target.positions(stop, np.array([-0.3, 1.0])), [0.1, 1.0])
    np.testing.assert_allclose(target.positions(move, np.array([-0.3, 1.0])), [-0.25, 1.0])
    np.testing.assert_allclose(target.positions(stop, np.array([-0.2, 1.0])), [-0.2, 1.0])


ARM = ["shoulder", "finger"]  # an arm joint and a gripper's finger joint


def gripper_config(**changes):
    return config(
        output_mode="joint_trajectory", joint_names=ARM, gripper_joints=["finger"], **changes
    )


def test_a_stop_keeps_the_fingers_squeezing_what_they_hold():
    """Closed on an object, a finger stands at the object's surface while its commanded target
    lies inside it: that gap is the grip. A stop holds the arm where it was measured and the
    finger at its commanded target, never at the measured position, which would let go."""
    # 0.1 m/s: a finger's target may lead it by at most 1 cm (one 0.1 s window).
    target = TrajectoryTarget.for_config(gripper_config(max_joint_velocity=0.1))
    close = Decision(np.array([0.0, -0.1]), 1.0, False, Level.OK, "moving")
    hold = Decision(np.zeros(2), 1.0, False, Level.OK, "moving")
    stop = Decision(np.zeros(2), 0.0, True, Level.WARN, "stopped")
    blocked = np.array([0.5, 0.03])  # the finger stopped by a 6 cm object
    commanded = None
    for step in range(5):  # closing on it: the target moves 1 cm per 0.1 s, then stays there
        commanded = target.positions(close, blocked, now=0.1 * step)
    np.testing.assert_allclose(commanded, [0.5, 0.03 - 0.1 * 0.1])  # at most a window ahead
    # The policy stops commanding the finger: the target stays, the grip holds.
    np.testing.assert_allclose(target.positions(hold, blocked, now=0.5)[1], 0.02)
    held = target.positions(stop, np.array([0.49, 0.03]), now=0.6)
    np.testing.assert_allclose(held, [0.49, 0.02])
    # While the stop lasts: the same target, wherever the joints are measured.
    np.testing.assert_allclose(target.positions(stop, np.array([0.4, 0.035]), now=0.7), held)


def test_a_gripper_joint_holds_at_most_a_window_ahead_of_where_it_was_moving():
    config_ = gripper_config(max_joint_velocity=0.2)
    target = TrajectoryTarget.for_config(config_)
    opening = Decision(np.array([0.0, 0.05]), 1.0, False, Level.OK, "moving")
    stop = Decision(np.zeros(2), 0.0, True, Level.WARN, "stopped")
    free = np.array([0.0, 0.01])
    first = target.positions(opening, free, now=0.0)
    np.testing.assert_allclose(first, [0.0, 0.01 + 0.05 * 0.1])
    held = target.positions(stop, np.array([0.0, 0.012]), now=0.05)
    assert held[1] == pytest.approx(first[1])
    assert held[1] - 0.012 <= config_.max_joint_velocity * 0.1


def test_without_gripper_joints_a_stop_holds_every_joint_as_measured():
    target = TrajectoryTarget.for_config(config(output_mode="joint_trajectory", joint_names=ARM))
    close = Decision(np.array([0.0, -0.1]), 1.0, False, Level.OK, "moving")
    stop = Decision(np.zeros(2), 0.0, True, Level.WARN, "stopped")
    target.positions(close, np.array([0.5, 0.03]), now=0.0)
    np.testing.assert_allclose(target.positions(stop, np.array([0.5, 0.03]), 0.1), [0.5, 0.03])


def test_max_joint_velocity_limits_a_gripper_joint_like_any_joint():
    governor = SafetyGovernor(
        config(output_mode="joint_velocity", joint_names=ARM, max_joint_velocity=0.05)
    )
    decision = governor.on_proposal(Proposal(1.0, ("finger",), np.array([0.2]), 0.0), 1.0)
    assert not decision.stopped
    assert np.abs(decision.velocities).max() <= 0.05 + 1e-12
    assert decision.velocities[1] > 0
