import numpy as np
import pytest

from vla_ros.sim.driver import CommandDriver
from vla_ros.sim.scenes import Drive, scene_spec

ARM = scene_spec("arm")
MOBILE = scene_spec("mobile")
HOME = np.zeros(len(ARM.joint_names))
ARM_JOINTS = len(ARM.joint_names)  # the six arm joints and the gripper's finger


def test_a_velocity_command_holds_until_the_driver_timeout():
    driver = CommandDriver(MOBILE, command_timeout=0.5)
    assert not driver.setpoint(0.0, np.zeros(2)).values.any()
    driver.twist(0.3, -0.2, now=1.0)
    setpoint = driver.setpoint(1.4, np.zeros(2))
    assert setpoint.drive is Drive.TWIST
    np.testing.assert_array_equal(setpoint.values, [0.3, -0.2])
    assert not driver.setpoint(1.6, np.zeros(2)).values.any()


def test_a_trajectory_point_with_velocities_is_followed_for_the_joints_it_names():
    driver = CommandDriver(ARM)
    driver.trajectory_point(["elbow_joint", "shoulder_pan_joint"], [], [0.2, -0.1], 0.1, HOME, 0.0)
    setpoint = driver.setpoint(0.1, HOME)
    assert setpoint.drive is Drive.JOINT_VELOCITY
    np.testing.assert_array_equal(setpoint.values, [-0.1, 0, 0.2, 0, 0, 0, 0])


def test_a_trajectory_point_with_positions_only_is_a_goal_without_timeout():
    driver = CommandDriver(ARM, command_timeout=0.5)
    driver.trajectory_point(["wrist_2_joint"], [1.0], [], 2.0, HOME, now=0.0)
    velocities = driver.setpoint(10.0, HOME).values
    np.testing.assert_allclose(velocities, [0, 0, 0, 0, 0.5, 0, 0])  # 1 rad in 2 s
    reached = HOME.copy()
    reached[4] = 1.0
    assert not driver.setpoint(11.0, reached).values.any()


@pytest.mark.parametrize(
    ("send", "reason"),
    [
        (lambda d: d.joint_velocities([0.1, 0.2], 0.0), "has 2 values"),
        (lambda d: d.joint_velocities([np.nan] * ARM_JOINTS, 0.0), "NaN"),
        (lambda d: d.trajectory_point(["tail_joint"], [1.0], [], 1.0, HOME, 0.0), "tail_joint"),
        (lambda d: d.trajectory_point(["elbow_joint"] * 2, [1, 1], [], 1.0, HOME, 0.0), "twice"),
    ],
)
def test_a_bad_command_is_refused_and_stops_the_robot(send, reason):
    driver = CommandDriver(ARM)
    driver.joint_velocities([0.5] * ARM_JOINTS, now=0.0)
    with pytest.raises(ValueError, match=reason):
        send(driver)
    assert not driver.setpoint(0.1, HOME).values.any()


def test_a_twist_for_an_arm_is_refused_and_leaves_its_command_alone():
    driver = CommandDriver(ARM)
    driver.joint_velocities([0.5] * ARM_JOINTS, now=0.0)
    with pytest.raises(ValueError, match="no mobile base"):
        driver.twist(0.1, 0.0, 0.0)
    assert driver.setpoint(0.1, HOME).values.all()


def test_wheel_velocities_drive_the_base_as_the_twist_they_imply(worlds):
    world = worlds("mobile")
    world.reset(seed=0)
    world.apply_joint_velocities([-2.5, 2.5])  # rad/s: turning left at 2.5 x 0.06 / 0.2
    np.testing.assert_allclose(world.command, [0.0, 0.75])
    world.apply_joint_velocities([5.0, 5.0])
    np.testing.assert_allclose(world.command, [0.3, 0.0])
