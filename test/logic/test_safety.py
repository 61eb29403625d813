import math

import numpy as np
import pytest
from hypothesis import given
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


@given(
    st.floats(0, 10, allow_nan=False),
    st.floats(0, 10, allow_nan=False),
    st.floats(0, 5, allow_nan=False),
    st.floats(0.01, 5, allow_nan=False),
)
def test_scale_falls_monotonically_and_stays_in_unit_interval(u1, u2, slowdown, gap):
    stop = slowdown + gap
    low, high = sorted((u1, u2))
    s_low, s_high = speed_scale(low, slowdown, stop), speed_scale(high, slowdown, stop)
    assert 0.0 <= s_high <= s_low <= 1.0


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


@given(
    st.lists(st.floats(-50, 50, allow_nan=False), min_size=2, max_size=2),
    st.lists(st.floats(0, 5, allow_nan=False), min_size=2, max_size=2),
)
def test_clamped_commands_never_exceed_limits(values, limits):
    out = clamp_preserving_direction(np.array(values), np.array(limits))
    assert np.all(np.abs(out) <= np.array(limits) + 1e-12)


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
