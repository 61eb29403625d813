"""Scripted experts: ground-truth controllers that solve every scene's tasks.

They teach the policies (data collection) and bound what a policy can do (evaluation), so they
act only on what the camera could justify. The mobile expert searches by turning left whenever
the target is out of the picture, and steers to keep it in the picture on the way: a reactive
policy that sees only the image can learn that, whereas "turn towards where I know it is" would
teach opposite turns for identical pictures. The reaching experts use damped least squares on the
effector's Jacobian (mj_jacSite), lock joints at their limits, and let the head watch the target.

Picking and placing (a scene with a gripper) use the same solver on the grip point's position and
the hand's orientation (fingers pointing down, closing across the object's faces), and decide
what to do from the world's state alone, never from what they did before: line up above the
object, come down on it, close, lift (and hold); to put it down, carry it up, across and down to
the place, open, and rise. A state the policy drifted into (a dropped object, a half-closed
gripper) gets the action that recovers from it, which DAgger relabelling needs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from vla_ros.sim.scenes import Effector
from vla_ros.sim.tasks import SceneObject, TaskKind, TaskState

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

# Picking and placing
ROTATION_GAIN = 3.0  # 1/s: the hand's turn rate per radian of orientation error
MAX_HAND_TURN = 1.5  # rad/s
FINGER_REACH = 0.02  # metres: the finger tips are this far below the grip point
PALM_REACH = 0.04  # metres: the palm is this far above it
CLEARANCE = 0.005  # metres: finger tips above the table, the palm above the object
TRAVEL_HEIGHT = 0.15  # metres above the support: the finger tips (or a carried object) clear
# every object and the bowl's rim
# Metres from the grasp point where the gripper closes. The fingers push the object to their
# middle as they close, so closing 2 cm off still grasps (the expert picks and places 100 of 100
# with it, as with 8 mm before). A learner sees about 1 cm per pixel of its 64x64 picture and
# hovers 1-2.5 cm off, so the demonstrations close wherever closing works: at 8 mm a policy
# trained on them hovered there without ever closing (docs/models.md).
GRASP_TOLERANCE = 0.02
CLOSING_REACH = 0.025  # metres: with a finger on the object, it keeps closing this far off
# The hand comes down only once lined up: at travel height while off by FUNNEL (metres, or
# radians x FUNNEL / TURN_FUNNEL) or more, all the way down within LINED_UP, in between in
# proportion. The open fingers leave 1.3 cm on each side of the widest object.
FUNNEL = 0.03
TURN_FUNNEL = 0.3
LINED_UP = 0.02  # as GRASP_TOLERANCE: where coming down ends in a grasp
SQUEEZE = 0.006  # metres the finger target is past the fingers before the hand lifts (~2 N)
RELEASE_GAP = 0.005  # metres above the place's surface where the object is let go (a tall
# object dropped from higher topples)
SETTLED = 0.02  # metres: an object's bottom this close to the place's surface is put down
CUBE_SYMMETRY = math.pi / 2  # a cube is grasped across any pair of faces
# Far from the arm's base the hand cannot point straight down (the wrist would be out of reach):
# it leans outwards about the fingers' closing axis, more the further out it works.
LEAN_FROM = 0.45  # metres from the base, horizontally, where leaning starts
LEAN_RATE = 3.0  # radians per metre beyond that
MAX_LEAN = 0.6  # radians


def expert_action(world: SimWorld) -> np.ndarray:
    """The expert's command for the world's current task, in the scene's action order.

    Zero when there is no running task (none given, an unknown target, already finished).
    """
    task = world.tracker.task
    if world.task_status().state is not TaskState.RUNNING or task is None or task.target is None:
        return np.zeros(len(world.spec.action_names))
    if task.kind is TaskKind.PICK:
        return _pick(world, task.target)
    if task.kind is TaskKind.PLACE and task.place is not None:
        return _place(world, task.target, task.place)
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
    hand_velocity = _capped(CARTESIAN_GAIN * (target - data.site_xpos[site]), MAX_HAND_SPEED)
    return _solve(world, effector.joints, jacobian, hand_velocity, positions, home)


def _capped(vector: np.ndarray, largest: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector * (largest / norm) if norm > largest else vector


def _solve(
    world: SimWorld,
    joint_names: tuple[str, ...],
    jacobian: np.ndarray,
    task_velocity: np.ndarray,
    positions: np.ndarray,
    home: np.ndarray,
) -> np.ndarray:
    """Damped least squares: joint velocities that give the task velocity (rows of `jacobian`),
    never pushing a joint into its limit, with a pull towards `home` in the task's null space."""
    model = world.model
    joints = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in joint_names]
    columns = jacobian[:, model.jnt_dofadr[joints]]
    rows = len(task_velocity)
    low, high = model.jnt_range[joints].T
    limited = model.jnt_limited[joints].astype(bool)
    free = np.ones(len(joints), dtype=bool)
    velocity = np.zeros(len(joints))
    # Solve, then lock every joint the solution pushes into its limit and solve again.
    for _ in range(len(joints)):
        active = columns[:, free]
        gram = active @ active.T + DAMPING**2 * np.eye(rows)
        solution = active.T @ np.linalg.solve(gram, task_velocity)
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


def _pick(world: SimWorld, obj: SceneObject) -> np.ndarray:
    """Line up above the object, come down on it, close, lift it to travel height and hold it."""
    grip, grasp = _grip_position(world), _grasp_point(world, obj)
    lifted = grasp.copy()
    lifted[2] = _support(world, obj) + TRAVEL_HEIGHT + FINGER_REACH
    holding, closing = _grip_state(world, obj, grip, grasp)
    if holding:
        return _move_hand(world, np.array([*grip[:2], lifted[2]]), obj, close=True, square=False)
    if closing:
        return _move_hand(world, grip, obj, close=True)
    return _move_hand(world, _funnel(world, grasp, grip, obj), obj, close=False)


def _place(world: SimWorld, obj: SceneObject, place: SceneObject) -> np.ndarray:
    """Pick the object up, carry it at travel height over the place, lower it onto (into) the
    place, let go and rise."""
    grip, position = _grip_position(world), world.object_position(obj)
    centre, surface, radius = world.place_surface(place)
    bottom = position[2] - world.half_height(obj)
    offset = grip - position  # where the hand holds the object
    on_place = float(np.linalg.norm(position[:2] - centre)) <= radius and bottom - surface < SETTLED
    touching = world.fingers_touching(obj) > 0
    if on_place:  # let go (keeping still), then rise out of the way
        if touching:
            return _move_hand(world, grip, obj, close=False, square=False)
        travel = _support(world, obj) + TRAVEL_HEIGHT + FINGER_REACH
        return _move_hand(world, np.array([*grip[:2], travel]), obj, close=False, square=False)
    holding, _ = _grip_state(world, obj, grip, _grasp_point(world, obj))
    support = _support(world, obj)
    if not holding or bottom - support < LINED_UP:
        return _pick(world, obj)  # take it (first, or again after a drop), lift it clear
    carry = support + TRAVEL_HEIGHT + world.half_height(obj) + offset[2]
    release = surface + RELEASE_GAP + world.half_height(obj) + offset[2]
    above = np.array([*(centre + offset[:2]), carry])
    across = float(np.linalg.norm(grip[:2] - above[:2]))
    if across > FUNNEL and grip[2] < carry - FUNNEL:
        target = np.array([*grip[:2], carry])  # up first, clear of everything on the table
    else:  # across at travel height, down only once above the place
        target = above.copy()
        target[2] = release + (carry - release) * _funnel_height(across)
    return _move_hand(world, target, obj, close=True, square=False)


def _grip_state(
    world: SimWorld, obj: SceneObject, grip: np.ndarray, grasp: np.ndarray
) -> tuple[bool, bool]:
    """(holding: both fingers on the object and squeezing it; closing: the hand is where it
    should close, or already has a finger on the object there)."""
    gripper = world.spec.gripper
    assert gripper is not None
    opening = world.joint_positions([gripper.joint])[0]
    squeezing = world.finger_target() < opening - SQUEEZE
    if world.grasped(obj) and squeezing:
        return True, False
    off = float(np.linalg.norm(grip - grasp))
    touching = world.fingers_touching(obj) > 0
    # Once a finger is on it, a hand pushed off by a few centimetres keeps closing: the fingers
    # centre the object between them.
    return False, off < GRASP_TOLERANCE or (touching and off < CLOSING_REACH)


def _funnel(world: SimWorld, grasp: np.ndarray, grip: np.ndarray, obj: SceneObject) -> np.ndarray:
    """Above the grasp point: at travel height while the hand is off to the side or turned
    wrong, coming down as it lines up."""
    misaligned = max(
        float(np.linalg.norm(grip[:2] - grasp[:2])),
        FUNNEL * float(np.linalg.norm(_orientation_error(world, obj, grasp))) / TURN_FUNNEL,
    )
    travel = _support(world, obj) + TRAVEL_HEIGHT + FINGER_REACH
    target = grasp.copy()
    target[2] = grasp[2] + max(0.0, travel - grasp[2]) * _funnel_height(misaligned)
    return target


def _funnel_height(misaligned: float) -> float:
    """The share of the way up to travel height for a hand this far off (see FUNNEL)."""
    return min(1.0, max(0.0, (misaligned - LINED_UP) / (FUNNEL - LINED_UP)))


def _move_hand(
    world: SimWorld, target: np.ndarray, obj: SceneObject, close: bool, square: bool = True
) -> np.ndarray:
    """The command that moves the grip point towards `target`, fingers down (and `square` to
    the object, see _orientation_error), with the gripper closing or opening at full speed."""
    spec, model, data = world.spec, world.model, world.data
    gripper = spec.gripper
    assert gripper is not None
    effector = spec.effectors[0]
    names = spec.action_names
    positions = world.joint_positions(names)
    home = np.array([spec.home_pose.get(name, 0.0) for name in names])
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, gripper.site)
    position_rows, rotation_rows = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    mujoco.mj_jacSite(model, data, position_rows, rotation_rows, site)
    move = _capped(CARTESIAN_GAIN * (target - data.site_xpos[site]), MAX_HAND_SPEED)
    turn = _capped(ROTATION_GAIN * _orientation_error(world, obj, target, square), MAX_HAND_TURN)
    chain = [names.index(joint) for joint in effector.joints]
    velocity = np.zeros(len(names))
    velocity[chain] = _solve(
        world,
        effector.joints,
        np.vstack([position_rows, rotation_rows]),
        np.concatenate([move, turn]),
        positions[chain],
        home[chain],
    )
    limits = np.asarray(spec.action_limits)
    # One scale for the arm keeps the hand on its straight path; the fingers move on their own.
    velocity[chain] /= max(1.0, float(np.max(np.abs(velocity[chain]) / limits[chain])))
    finger = names.index(gripper.joint)
    velocity[finger] = -limits[finger] if close else limits[finger]
    return velocity


def _orientation_error(
    world: SimWorld, obj: SceneObject, where: np.ndarray, square: bool = True
) -> np.ndarray:
    """The rotation (axis times angle, world frame) that turns the hand, working at `where`,
    to point its fingers down, leaning out as far out as `where` is. `square`: to grasp, the
    fingers close sideways as seen from the arm's base (across the cube's pair of faces nearest
    to that) and the hand leans about that closing axis; otherwise (carrying) they keep their
    turn and the hand leans straight out."""
    gripper = world.spec.gripper
    assert gripper is not None
    site = mujoco.mj_name2id(world.model, mujoco.mjtObj.mjOBJ_SITE, gripper.site)
    current = world.data.site_xmat[site].reshape(3, 3)
    outwards = math.atan2(where[1], where[0])
    yaw = outwards + math.pi / 2 if square else math.atan2(current[1, 0], current[0, 0])
    if square and obj.shape == "cube":
        face = world.object_yaw(obj)
        yaw = face + CUBE_SYMMETRY * round((yaw - face) / CUBE_SYMMETRY)
    # Of the two closing directions, the one nearer the fingers' current one: no half turns.
    if math.cos(yaw - math.atan2(current[1, 0], current[0, 0])) < 0:
        yaw += math.pi
    x_axis = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    radial = np.array([math.cos(outwards), math.sin(outwards), 0.0])
    lean = min(MAX_LEAN, LEAN_RATE * max(0.0, float(np.linalg.norm(where[:2])) - LEAN_FROM))
    # Leaning towards the outside: the wrist comes back within reach.
    lean_direction = radial - x_axis * float(radial @ x_axis) if square else radial
    lean_direction /= max(float(np.linalg.norm(lean_direction)), 1e-9)
    z_axis = -math.cos(lean) * np.array([0.0, 0.0, 1.0]) + math.sin(lean) * lean_direction
    x_axis -= z_axis * float(x_axis @ z_axis)
    x_axis /= float(np.linalg.norm(x_axis))
    wanted = np.column_stack([x_axis, np.cross(z_axis, x_axis), z_axis])
    return 0.5 * sum(np.cross(current[:, i], wanted[:, i]) for i in range(3))


def _grip_position(world: SimWorld) -> np.ndarray:
    gripper = world.spec.gripper
    assert gripper is not None
    return world.site_position(gripper.site)


def _support(world: SimWorld, obj: SceneObject) -> float:
    """The height of what the object rested on when the task began (the table)."""
    return world.rest_height(obj) - world.half_height(obj)


def _grasp_point(world: SimWorld, obj: SceneObject) -> np.ndarray:
    """Where the grip point closes on the object: its centre, or higher where the finger tips
    would otherwise touch the table or the palm the object's top (a tall object)."""
    point = world.object_position(obj)
    top = point[2] + world.half_height(obj)
    point[2] = max(
        point[2],
        _support(world, obj) + FINGER_REACH + CLEARANCE,
        top + CLEARANCE - PALM_REACH,
    )
    return point


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
