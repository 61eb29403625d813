import math

import numpy as np
import pytest

from vla_ros.logic.joints import InvalidJointState, JointStateAssembler, select_joints

JOINTS = ("shoulder", "elbow", "wrist")


def test_any_order_becomes_the_configured_order_and_extras_are_ignored():
    assembler = JointStateAssembler(JOINTS)
    sample, extra = assembler.update(
        2.0, ["wrist", "camera_tilt", "shoulder", "elbow"], [3.0, 9.0, 1.0, 2.0], [0.3, 0, 0.1, 0.2]
    )
    assert sample.names == JOINTS
    np.testing.assert_array_equal(sample.positions, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(sample.velocities, [0.1, 0.2, 0.3])
    assert extra == ("camera_tilt",)
    assert sample.stamp == 2.0


def test_joints_from_several_publishers_are_merged_and_dated_by_the_oldest():
    assembler = JointStateAssembler(JOINTS)
    sample, _ = assembler.update(1.0, ["shoulder", "elbow"], [1.0, 2.0], [])
    assert sample is None
    assert assembler.missing() == ("wrist",)
    sample, _ = assembler.update(1.5, ["wrist"], [3.0], [])
    np.testing.assert_array_equal(sample.positions, [1.0, 2.0, 3.0])
    assert sample.velocities is None
    assert sample.stamp == 1.0


@pytest.mark.parametrize(
    ("names", "positions", "velocities", "reason"),
    [
        (["shoulder", "elbow", "wrist"], [1.0, math.nan, 3.0], [], "not finite"),
        (["shoulder", "elbow", "wrist"], [1.0, 2.0, math.inf], [], "not finite"),
        (["shoulder", "elbow"], [1.0], [], "1 positions for 2"),
        (["shoulder", "elbow"], [1.0, 2.0], [0.1], "1 velocities for 2"),
        (["shoulder", "shoulder"], [1.0, 2.0], [], "duplicate"),
        ([], [], [], "names no joints"),
    ],
)
def test_malformed_joint_states_are_refused_with_a_reason(names, positions, velocities, reason):
    with pytest.raises(InvalidJointState, match=reason):
        JointStateAssembler(JOINTS).update(1.0, names, positions, velocities)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_velocity_is_unknown_not_a_fault(bad):
    """ros2_control's joint_state_broadcaster publishes NaN velocity for position-only joints."""
    assembler = JointStateAssembler(JOINTS)
    sample, _ = assembler.update(1.0, list(JOINTS), [1.0, 2.0, 3.0], [0.1, bad, 0.3])
    np.testing.assert_array_equal(sample.positions, [1.0, 2.0, 3.0])
    assert sample.velocities is None  # one unknown velocity: the policy gets none
    sample, _ = assembler.update(2.0, list(JOINTS), [1.0, 2.0, 3.0], [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(sample.velocities, [0.1, 0.2, 0.3])


def test_a_message_naming_none_of_the_joints_is_ignored_not_refused():
    """A gripper's own JointState on the same topic must not disturb the arm's."""
    assembler = JointStateAssembler(JOINTS)
    assembler.update(1.0, list(JOINTS), [1.0, 2.0, 3.0], [])
    sample, extra = assembler.update(1.01, ["finger_left", "finger_right"], [0.0, math.nan], [])
    assert sample is None and extra == ("finger_left", "finger_right")
    assert assembler.missing() == ()  # the arm's joints are still known
    again, _ = assembler.update(1.02, ["wrist"], [3.5], [])
    np.testing.assert_array_equal(again.positions, [1.0, 2.0, 3.5])


def test_forget_drops_every_joint():
    assembler = JointStateAssembler(JOINTS)
    assembler.update(1.0, list(JOINTS), [1.0, 2.0, 3.0], [])
    assembler.forget()
    assert assembler.missing() == JOINTS


def test_a_non_finite_value_forgets_the_joints_it_named():
    assembler = JointStateAssembler(JOINTS)
    assembler.update(1.0, list(JOINTS), [1.0, 2.0, 3.0], [])
    with pytest.raises(InvalidJointState):
        assembler.update(1.1, ["elbow"], [math.nan], [])
    assert assembler.missing() == ("elbow",)


def test_nan_in_an_ignored_joint_does_no_harm():
    sample, extra = JointStateAssembler(("a",)).update(1.0, ["a", "b"], [0.5, math.nan], [])
    np.testing.assert_array_equal(sample.positions, [0.5])
    assert extra == ("b",)


def test_without_configured_names_each_message_stands_alone():
    assembler = JointStateAssembler(())
    sample, _ = assembler.update(1.0, ["x", "y"], [1.0, 2.0], [])
    assert sample.names == ("x", "y")
    sample, _ = assembler.update(2.0, ["z"], [3.0], [])
    assert sample.names == ("z",)


def test_select_joints_reorders_and_names_what_is_missing():
    np.testing.assert_array_equal(select_joints(["a", "b"], [1.0, 2.0], ["b", "a"]), [2.0, 1.0])
    with pytest.raises(KeyError, match="'c'"):
        select_joints(["a", "b"], [1.0, 2.0], ["c"])
