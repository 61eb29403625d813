"""Scripted experts: ground-truth controllers that solve every scene's tasks.

They teach the policies (data collection) and bound what a policy can do (evaluation), so they
act only on what the camera could justify. The mobile expert searches by turning left whenever
the target is out of the picture, and steers to keep it in the picture on the way: a reactive
policy that sees only the image can learn that, whereas "turn towards where I know it is" would
teach opposite turns for identical pictures. The reaching experts use damped least squares on the
effector's Jacobian (mj_jacSite), lock joints at their limits, and let the head watch the target.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from vla_ros.sim.scenes import Effector
from vla_ros.sim.tasks import TaskState

if TYPE_CHECKING:
    from vla_ros.sim.world import SimWorld

# Mobile base
SEARCH_TURN_RATE = 1.0  # rad/s, always to the left (counter-clockwise)
VIEW_MARGIN = 0.1  # fraction of the picture width: nearer the edge than this is "out of view"
STEERING_GAIN = 2.0  # rad/s per rad of bearing
APPROACH_GAIN = 1.0  # m/s per metre beyond the stopping distance
STOP_DISTANCE = 0.3  # metres, centre to centre; inside the task's success distance

# Reaching
CARTESIAN_GAIN = 3.0  # 1/s: the hand's speed per metre of error
MAX_HAND_SPEED = 0.2  # m/s
DAMPING = 0.05  # damped least squares: keeps joint speeds finite near singularities
POSTURE_GAIN = 0.5  # 1/s: pulls joints the task does not need towards the home pose
GAZE_GAIN = 3.0  # 1/s: head joints towards looking at the target
LIMIT_MARGIN = 0.05  # radians from a joint limit where the expert stops pushing into it


def expert_action(world: SimWorld) -> np.ndarray:
    """The expert's command for the world's current task, in the scene's action order.

    Zero when there is no running task (none given, an unknown target, already finished).
    """
    task = world.tracker.task
    if world.task_status().state is not TaskState.RUNNING or task is None or task.target is None:
        return np.zeros(len(world.spec.action_names))
    target = world.target_point(task.target)
    if world.spec.base is not None:
        return _drive_to(world, target)
    return _reach(world, target)


def _drive_to(world: SimWorld, target: np.ndarray) -> np.ndarray:
    linear_limit, angular_limit = world.spec.action_limits
    pixel = world.camera_pixel(target)
    width = world.camera_size[1]
    margin = VIEW_MARGIN * width
    if pixel is None or not margin <= pixel[1] <= width - margin:
        return np.array([0.0, min(SEARCH_TURN_RATE, angular_limit)])
    x, y, yaw = world.base_pose()
    bearing = _wrap(math.atan2(target[1] - y, target[0] - x) - yaw)
    distance = math.hypot(target[0] - x, target[1] - y)
    # Off-centre targets slow the base down, so turning keeps them in the picture.
    centring = max(0.0, 1.0 - abs(pixel[1] - width / 2) / (width / 2 - margin))
    linear = min(linear_limit, APPROACH_GAIN * max(0.0, distance - STOP_DISTANCE)) * centring
    angular = float(np.clip(STEERING_GAIN * bearing, -angular_limit, angular_limit))
    return np.array([linear, angular])


def _reach(world: SimWorld, target: np.ndarray) -> np.ndarray:
    spec = world.spec
    names = spec.action_names
    positions = world.joint_positions(names)
    home = np.array([spec.home_pose.get(name, 0.0) for name in names])
    velocity = POSTURE_GAIN * (home - positions)  # joints without a job go home
    effector = _effector_for(world, target)
    chain = [names.index(joint) for joint in effector.joints]
    velocity[chain] = _reach_velocities(world, effector, target, positions[chain], home[chain])
    if spec.gaze is not None:
        gaze = [names.index(spec.gaze.yaw_joint), names.index(spec.gaze.pitch_joint)]
        velocity[gaze] = GAZE_GAIN * (_look_at(world, target) - positions[gaze])
    limits = np.asarray(spec.action_limits)
    # One scale for the whole command keeps the hand on its straight path.
    return velocity / max(1.0, float(np.max(np.abs(velocity) / limits)))


def _effector_for(world: SimWorld, target: np.ndarray) -> Effector:
    """The hand on the target's side (left for y >= 0): a rule the camera can see, stable over
    the whole reach, unlike "the nearest hand", which can flip midway."""
    effectors = world.spec.effectors
    if len(effectors) == 1:
        return effectors[0]
    return effectors[0] if target[1] >= 0 else effectors[1]


def _reach_velocities(
    world: SimWorld,
    effector: Effector,
    target: np.ndarray,
    positions: np.ndarray,
    home: np.ndarray,
) -> np.ndarray:
    """Joint velocities that move the effector straight towards the target."""
    model, data = world.model, world.data
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, effector.site)
    jacobian = np.zeros((3, model.nv))
    mujoco.mj_jacSite(model, data, jacobian, None, site)
    joints = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in effector.joints]
    columns = jacobian[:, model.jnt_dofadr[joints]]
    error = target - data.site_xpos[site]
    hand_velocity = CARTESIAN_GAIN * error
    speed = np.linalg.norm(hand_velocity)
    if speed > MAX_HAND_SPEED:
        hand_velocity *= MAX_HAND_SPEED / speed
    low, high = model.jnt_range[joints].T
    limited = model.jnt_limited[joints].astype(bool)
    free = np.ones(len(joints), dtype=bool)
    velocity = np.zeros(len(joints))
    # Solve, then lock every joint the solution pushes into its limit and solve again.
    for _ in range(len(joints)):
        active = columns[:, free]
        gram = active @ active.T + DAMPING**2 * np.eye(3)
        solution = active.T @ np.linalg.solve(gram, hand_velocity)
        # The posture term lives in the null space of the task, so it never slows the reach.
        projector = np.eye(active.shape[1]) - np.linalg.pinv(active) @ active
        solution += projector @ (POSTURE_GAIN * (home[free] - positions[free]))
        velocity[:] = 0.0
        velocity[free] = solution
        pushing = limited & (
            ((positions >= high - LIMIT_MARGIN) & (velocity > 0))
            | ((positions <= low + LIMIT_MARGIN) & (velocity < 0))
        )
        if not pushing.any():
            break
        free &= ~pushing
        if not free.any():
            return np.zeros(len(joints))
    return velocity


def _look_at(world: SimWorld, target: np.ndarray) -> np.ndarray:
    """Neck (yaw, pitch) angles pointing the head at the target; positive pitch looks down."""
    gaze = world.spec.gaze
    assert gaze is not None
    model, data = world.model, world.data
    head = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, gaze.head_body)
    # The direction in the frame of the body the neck is mounted on (the torso).
    parent = model.body_parentid[model.body_parentid[head]]
    direction = data.xmat[parent].reshape(3, 3).T @ (target - data.xpos[head])
    yaw = math.atan2(direction[1], direction[0])
    pitch = math.atan2(-direction[2], math.hypot(direction[0], direction[1]))
    bounds = [
        model.jnt_range[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint)]
        for joint in (gaze.yaw_joint, gaze.pitch_joint)
    ]
    return np.array(
        [np.clip(angle, *bound) for angle, bound in zip((yaw, pitch), bounds, strict=True)]
    )


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi
