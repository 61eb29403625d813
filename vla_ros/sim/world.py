"""SimWorld: one MuJoCo world (any scene) with its camera and its task.

The world is what the sim node, data collection and closed-loop evaluation share. Commands are
in physical units in the scene's `action_names` order (linear_x and angular_z for the mobile base,
joint velocities for the arm and the humanoid), held until the next command, and applied through
velocity servos every physics step; a gripper's finger velocity moves its position target.
Everything that varies per episode (start pose, object and place placement) comes from the
episode's seed, so an episode replays exactly from its seed and the
same commands.

Rendering is headless (MUJOCO_GL defaults to EGL, see vla_ros/sim/__init__.py); each world owns
one offscreen renderer, freed by `close()` (or by leaving a `with` block).
"""

from __future__ import annotations

import copy
import math
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import mujoco
import numpy as np

from vla_ros.sim.scenes import Drive, SceneSpec, scene_spec
from vla_ros.sim.tasks import (
    LIFT_HEIGHT,
    SceneObject,
    TaskKind,
    TaskStatus,
    TaskTracker,
    Whereabouts,
    is_stop_command,
    make_task,
)

DEFAULT_CAMERA_SIZE = (240, 320)  # (height, width): the sim node's default camera
MAX_CAMERA_SIDE = 4096
REACH_CLEARANCE = 0.02  # metres above an object's top where a hand "touches" it
_OBJECT_PREFIX = "object_"
_PLACE_PREFIX = "place_"
_PLACEMENT_TRIES = 10_000
# An object is at rest below these speeds (a put-down object must have stopped moving).
REST_SPEED = 0.02  # m/s
REST_SPIN = 0.5  # rad/s


class JointState(NamedTuple):
    names: tuple[str, ...]
    positions: np.ndarray  # radians (wheels, revolute joints) or metres
    velocities: np.ndarray


class SimWorld:
    """A scene, stepped in simulated time, seen through its camera, with a task to solve."""

    def __init__(
        self,
        scene: str | SceneSpec,
        camera_size: tuple[int, int] = DEFAULT_CAMERA_SIZE,
        seed: int | None = None,
        episode_timeout: float | None = None,
    ) -> None:
        self.spec = scene if isinstance(scene, SceneSpec) else scene_spec(scene)
        height, width = (int(side) for side in camera_size)
        if not (0 < height <= MAX_CAMERA_SIDE and 0 < width <= MAX_CAMERA_SIDE):
            raise ValueError(
                f"camera size must be 1..{MAX_CAMERA_SIDE} pixels per side, got {camera_size}"
            )
        self.camera_size = (height, width)
        if self.spec.objects is None:
            self.model = mujoco.MjModel.from_xml_path(str(self.spec.model_path))
        else:
            self.model = mujoco.MjModel.from_xml_string(_compositional_xml(self.spec))
        _configure_fast_rendering(self.model, width, height)
        self.data = mujoco.MjData(self.model)
        self._renderer: mujoco.Renderer | None = None
        self._gl_thread: ThreadPoolExecutor | None = None
        self._camera_id = self._id(mujoco.mjtObj.mjOBJ_CAMERA, self.spec.camera)
        # A compositional scene shows some of its bodies each episode (`_show_objects`).
        self.unseen_combinations = False  # episodes show one combination held out of training
        self._pool = self._pool_geoms() if self.spec.objects is not None else {}
        self.objects = () if self._pool else self._find_objects(_OBJECT_PREFIX)
        self.places = self._find_objects(_PLACE_PREFIX, required=False)
        self._joint_qpos = {name: self._qpos_address(name) for name in self._all_joint_names()}
        self._joint_dof = {
            name: int(self.model.jnt_dofadr[self._id(mujoco.mjtObj.mjOBJ_JOINT, name)])
            for name in self._joint_qpos
        }
        self._limits = np.asarray(self.spec.action_limits, dtype=float)
        self._command = np.zeros(len(self.spec.action_names))
        gripper = self.spec.gripper
        if self.spec.drive is Drive.JOINT_VELOCITY:
            # Velocity servos, all but the gripper's position actuator (driven in `step`).
            self._servo_channels = np.array(
                [
                    i
                    for i, n in enumerate(self.spec.action_names)
                    if gripper is None or n != gripper.joint
                ],
                dtype=int,
            )
            self._command_actuators = np.array(
                [self._actuator(self.spec.action_names[i]) for i in self._servo_channels], dtype=int
            )
        if gripper is not None:
            self._finger_channel = self.spec.action_names.index(gripper.joint)
            self._finger_actuator = self._actuator(gripper.joint)
            self._finger_range = self.model.actuator_ctrlrange[self._finger_actuator].copy()
            self._finger_bodies = {
                self._id(mujoco.mjtObj.mjOBJ_BODY, body) for body in gripper.finger_bodies
            }
        self._rest_height: dict[str, float] = {}
        self.tracker = TaskTracker(
            self.spec.success_distance,
            episode_timeout if episode_timeout is not None else self.spec.episode_timeout,
        )
        self._instruction: str | None = None
        self._seeds = np.random.default_rng(seed)
        self.seed = 0
        self.reset(seed)

    # --- episode -------------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> TaskStatus:
        """A new episode: start pose and object placement drawn from `seed`.

        The current instruction (if any) starts again as a new task. Without a seed, the next
        one from the world's own seed sequence is used, so a world built with a seed replays its
        whole series of episodes.
        """
        self.seed = int(seed) if seed is not None else int(self._seeds.integers(2**31 - 1))
        rng = np.random.default_rng(self.seed)
        mujoco.mj_resetData(self.model, self.data)
        self._place_robot(rng)
        if self._pool:
            self._show_objects(rng)
        self._place_objects(rng)
        self._command[:] = 0.0
        self.data.ctrl[:] = 0.0
        if self.spec.gripper is not None:
            # The finger's target starts where the finger is: a zero command holds it there.
            self.data.ctrl[self._finger_actuator] = self.joint_positions([self.spec.gripper.joint])[
                0
            ]
        mujoco.mj_forward(self.model, self.data)
        self.tracker.clear()
        if self._instruction is not None:
            self._start_task(self._instruction)
        return self._update_task()

    def set_instruction(self, text: str) -> TaskStatus:
        """Start the task `text` asks for; a stop command leaves the current task unchanged."""
        if is_stop_command(text):
            return self.task_status()
        self._instruction = text
        self._start_task(text)
        return self._update_task()

    def _start_task(self, text: str) -> None:
        task = make_task(text, self.objects, self.places, self.spec.task_kinds, self.whereabouts())
        # "Lifted" is measured from where each object rests when the task begins.
        self._rest_height = {obj.body: float(self.object_position(obj)[2]) for obj in self.objects}
        self.tracker.start(task, self.time)

    def whereabouts(self) -> dict[str, Whereabouts]:
        """Where each object and place is as the robot sees it (for "the left cube")."""
        width = self.camera_size[1]
        found = {}
        for obj in (*self.objects, *self.places):
            pixel = self.camera_pixel(self.object_position(obj))
            across = None
            if pixel is not None and 0 <= pixel[1] <= width:
                across = 2.0 * pixel[1] / width - 1.0
            found[obj.body] = Whereabouts(across, self.distance_to(obj))
        return found

    def task_status(self) -> TaskStatus:
        return self.tracker.status

    # --- commands and time ---------------------------------------------------------------------

    def apply_command(self, values: np.ndarray | list[float]) -> None:
        """Hold this command (scene's `action_names` order, m/s and rad/s) until the next one.

        Values beyond the scene's limits are clipped, as a motor driver would; a command of the
        wrong length or with NaN/inf raises ValueError and leaves the previous command in force.
        """
        command = np.asarray(values, dtype=float).reshape(-1)
        names = self.spec.action_names
        if command.shape != (len(names),):
            raise ValueError(
                f"scene {self.spec.name!r} takes {len(names)} command values "
                f"({', '.join(names)}), got {command.size}"
            )
        if not np.all(np.isfinite(command)):
            raise ValueError(f"command has NaN or inf values: {command.tolist()}")
        self._command = np.clip(command, -self._limits, self._limits)
        if self.spec.drive is Drive.JOINT_VELOCITY:
            self.data.ctrl[self._command_actuators] = self._command[self._servo_channels]

    def apply_joint_velocities(self, values: np.ndarray | list[float]) -> None:
        """Hold these velocities of the scene's `joint_names` (rad/s) until the next command.

        For joint-driven scenes this is `apply_command`. A differential-drive base turns its
        wheel speeds into the twist they imply, as a base controller taking wheel commands does.
        """
        velocities = np.asarray(values, dtype=float).reshape(-1)
        base = self.spec.base
        if base is None:
            self.apply_command(velocities)
            return
        if velocities.shape != (len(base.wheel_joints),):
            raise ValueError(
                f"scene {self.spec.name!r} takes {len(base.wheel_joints)} wheel velocities "
                f"({', '.join(base.wheel_joints)}), got {velocities.size}"
            )
        left, right = velocities * base.wheel_radius
        self.apply_command([(left + right) / 2, (right - left) / base.wheel_separation])

    @property
    def command(self) -> np.ndarray:
        """The command in force (after clipping)."""
        return self._command.copy()

    def stop(self) -> None:
        self.apply_command(np.zeros(len(self.spec.action_names)))

    @property
    def time(self) -> float:
        """Simulated seconds since the episode started."""
        return float(self.data.time)

    def step(self, duration: float | None = None) -> TaskStatus:
        """Advance the physics by `duration` seconds (default: one control period)."""
        duration = self.spec.control_period if duration is None else float(duration)
        if not duration > 0:
            raise ValueError(f"step duration must be positive, got {duration}")
        steps = max(1, round(duration / self.model.opt.timestep))
        finger_speed = 0.0 if self.spec.gripper is None else self._command[self._finger_channel]
        if finger_speed != 0.0:
            # The finger's position target moves at the commanded speed, a step at a time, and
            # stops at the ends of its range (a target beyond them would squeeze without limit).
            change = finger_speed * self.model.opt.timestep
            for _ in range(steps):
                target = self.data.ctrl[self._finger_actuator] + change
                self.data.ctrl[self._finger_actuator] = np.clip(target, *self._finger_range)
                mujoco.mj_step(self.model, self.data)
        elif self.spec.base is None:
            mujoco.mj_step(self.model, self.data, nstep=steps)
        else:
            # The base's servo targets are world-frame velocities: refresh them as it turns.
            for _ in range(steps):
                self._drive_base()
                mujoco.mj_step(self.model, self.data)
        return self._update_task()

    # --- sensing -------------------------------------------------------------------------------

    def joint_state(self) -> JointState:
        """What /joint_states reports: the scene's joints, positions and velocities."""
        names = self.spec.joint_names
        return JointState(names, self.joint_positions(names), self.joint_velocities(names))

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Every joint of the model (the base's planar joints too), not only the published ones."""
        return tuple(self._joint_qpos)

    def joint_positions(self, names: Sequence[str]) -> np.ndarray:
        return np.array([self.data.qpos[self._joint_qpos[name]] for name in names])

    def joint_velocities(self, names: Sequence[str]) -> np.ndarray:
        return np.array([self.data.qvel[self._joint_dof[name]] for name in names])

    def render(self) -> np.ndarray:
        """The camera picture, (height, width, 3) uint8 RGB. Callable from any thread."""
        if self._gl_thread is None:
            self._gl_thread = ThreadPoolExecutor(1, thread_name_prefix="mujoco-render")
        return self._gl_thread.submit(self._render_on_gl_thread).result()

    def _render_on_gl_thread(self) -> np.ndarray:
        # An OpenGL context is current on one thread at a time (EGL refuses another thread
        # with EGL_BAD_ACCESS), so the renderer lives, draws and dies on a thread of its own:
        # callers may be executor threads of a multi-threaded ROS node.
        if self._renderer is None:
            height, width = self.camera_size
            try:
                self._renderer = mujoco.Renderer(self.model, height, width)
            except mujoco.FatalError as error:
                raise RuntimeError(
                    f"cannot render offscreen: {error}. Set MUJOCO_GL=egl (or osmesa) before "
                    "mujoco is first imported; importing vla_ros.sim first does that"
                ) from error
            for flag in _SLOW_RENDER_FLAGS:
                self._renderer.scene.flags[flag] = False
        self._renderer.update_scene(self.data, camera=self._camera_id)
        return self._renderer.render()

    def camera_pixel(self, point: np.ndarray) -> tuple[float, float] | None:
        """Where a world point appears in the picture as (row, column), or None if behind it.

        The point may fall outside the picture (negative or too large): callers decide what
        "in view" means for them.
        """
        position = self.data.cam_xpos[self._camera_id]
        rotation = self.data.cam_xmat[self._camera_id].reshape(3, 3)
        x, y, z = rotation.T @ (np.asarray(point, dtype=float) - position)
        if z >= 0:  # MuJoCo cameras look along their -z axis
            return None
        height, width = self.camera_size
        focal = 0.5 * height / math.tan(math.radians(self.model.cam_fovy[self._camera_id]) / 2)
        return (height / 2 - focal * y / -z, width / 2 + focal * x / -z)

    # --- ground truth (for tasks, experts and tests) -------------------------------------------

    def object_position(self, obj: SceneObject) -> np.ndarray:
        """The centre of an object or a place (a free body's position, or a fixed one's)."""
        body = self._id(mujoco.mjtObj.mjOBJ_BODY, obj.body)
        mocap = self.model.body_mocapid[body]
        if mocap >= 0:
            return self.data.mocap_pos[mocap].copy()
        address = int(self.model.jnt_qposadr[self.model.body_jntadr[body]])
        return self.data.qpos[address : address + 3].copy()

    def object_velocity(self, obj: SceneObject) -> tuple[float, float]:
        """How fast an object moves (m/s) and spins (rad/s); zero for fixed ones."""
        body = self._id(mujoco.mjtObj.mjOBJ_BODY, obj.body)
        if self.model.body_jntnum[body] == 0:
            return 0.0, 0.0
        address = int(self.model.jnt_dofadr[self.model.body_jntadr[body]])
        velocity = self.data.qvel[address : address + 6]
        return float(np.linalg.norm(velocity[:3])), float(np.linalg.norm(velocity[3:]))

    def object_yaw(self, obj: SceneObject) -> float:
        """The object's turn about the vertical (radians), from its orientation."""
        rotation = self.data.xmat[self._id(mujoco.mjtObj.mjOBJ_BODY, obj.body)].reshape(3, 3)
        return math.atan2(rotation[1, 0], rotation[0, 0])

    def half_height(self, obj: SceneObject) -> float:
        """How far an object (its first geom, upright) reaches above its centre."""
        body = self._id(mujoco.mjtObj.mjOBJ_BODY, obj.body)
        return _half_height(self.model, int(self.model.body_geomadr[body]))

    def place_surface(self, place: SceneObject) -> tuple[np.ndarray, float, float]:
        """A place's centre (x, y), the height of the surface things rest on, and its radius:
        its first geom is that surface (a plate, a bowl's floor)."""
        body = self._id(mujoco.mjtObj.mjOBJ_BODY, place.body)
        geom = int(self.model.body_geomadr[body])
        centre = self.object_position(place) + self.model.geom_pos[geom]
        top = float(centre[2] + _half_height(self.model, geom))
        return centre[:2], top, float(self.model.geom_size[geom][0])

    def rest_height(self, obj: SceneObject) -> float:
        """The height of the object's centre when the current task began."""
        return self._rest_height.get(obj.body, float(self.object_position(obj)[2]))

    def touching(self, obj: SceneObject, bodies: set[int]) -> set[int]:
        """Which of `bodies` (ids) touch the object now."""
        body = self._id(mujoco.mjtObj.mjOBJ_BODY, obj.body)
        touched = set()
        geom_body = self.model.geom_bodyid
        for contact in self.data.contact[: self.data.ncon]:
            first, second = geom_body[contact.geom1], geom_body[contact.geom2]
            if first == body and second in bodies:
                touched.add(int(second))
            elif second == body and first in bodies:
                touched.add(int(first))
        return touched

    def fingers_touching(self, obj: SceneObject) -> int:
        """How many of the gripper's fingers touch the object (0 without a gripper)."""
        return 0 if self.spec.gripper is None else len(self.touching(obj, self._finger_bodies))

    def finger_target(self) -> float:
        """Where the gripper's position controller is taking the finger joint now."""
        if self.spec.gripper is None:
            raise ValueError(f"scene {self.spec.name!r} has no gripper")
        return float(self.data.ctrl[self._finger_actuator])

    def grasped(self, obj: SceneObject) -> bool:
        """Held between the fingers: both touch it."""
        return self.spec.gripper is not None and self.fingers_touching(obj) == 2

    def rests_on(self, obj: SceneObject, place: SceneObject) -> bool:
        """The object lies on or in the place: its centre within the place's radius, touching
        the place and nothing of the gripper, and still."""
        centre, _, radius = self.place_surface(place)
        position = self.object_position(obj)
        place_body = self._id(mujoco.mjtObj.mjOBJ_BODY, place.body)
        speed, spin = self.object_velocity(obj)
        return (
            float(np.linalg.norm(position[:2] - centre)) <= radius
            and bool(self.touching(obj, {place_body}))
            and self.fingers_touching(obj) == 0
            and speed < REST_SPEED
            and spin < REST_SPIN
        )

    def find_object(self, name: str) -> SceneObject:
        for obj in self.objects:
            if obj.name == name:
                return obj
        have = ", ".join(o.name for o in self.objects)
        raise ValueError(f"no object {name!r} in scene {self.spec.name!r}; it has: {have}")

    def target_point(self, obj: SceneObject) -> np.ndarray:
        """The point a task measures distance to: the object's centre for a base to drive to,
        just above its top for a hand to touch."""
        centre = self.object_position(obj)
        if self.spec.task_kind is TaskKind.GO_TO:
            return centre
        body = self._id(mujoco.mjtObj.mjOBJ_BODY, obj.body)
        geom = int(self.model.body_geomadr[body])
        return centre + np.array([0.0, 0.0, _half_height(self.model, geom) + REACH_CLEARANCE])

    def base_pose(self) -> tuple[float, float, float]:
        """The mobile base's (x, y, yaw) in the world; ValueError for scenes without a base."""
        if self.spec.base is None:
            raise ValueError(f"scene {self.spec.name!r} has no mobile base")
        x, y, yaw = self.joint_positions(self.spec.base.planar_joints)
        return float(x), float(y), float(yaw)

    def site_position(self, site: str) -> np.ndarray:
        return self.data.site_xpos[self._id(mujoco.mjtObj.mjOBJ_SITE, site)].copy()

    def target_distance(self) -> float | None:
        """Metres from the robot to the current task's target (None without a target).

        A base's distance is measured on the floor, centre to centre; a reaching task takes the
        hand nearest to the target.
        """
        task = self.tracker.task
        if task is None or task.target is None:
            return None
        return self.distance_to(task.target)

    def distance_to(self, obj: SceneObject) -> float:
        """Metres from the robot to `obj`, measured as a task measures it (any object, named or
        not: how far the robot is from each object shows which one it is heading for)."""
        target = self.target_point(obj)
        if self.spec.task_kind is TaskKind.GO_TO:
            return float(np.linalg.norm((self.site_position("base_centre") - target)[:2]))
        return min(
            float(np.linalg.norm(self.site_position(effector.site) - target))
            for effector in self.spec.effectors
        )

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Free the renderer (its GL context); the world can still step, and renders anew."""
        if self._gl_thread is not None:
            self._gl_thread.submit(self._close_on_gl_thread).result()
            self._gl_thread.shutdown()
            self._gl_thread = None

    def _close_on_gl_thread(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> SimWorld:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------

    def _update_task(self) -> TaskStatus:
        task = self.tracker.task
        if task is None or task.target is None:
            return self.tracker.update(self.time, None)
        if task.kind is TaskKind.PICK:
            lifted = self.object_position(task.target)[2] - self.rest_height(task.target)
            goal_met = lifted >= LIFT_HEIGHT and self.grasped(task.target)
            return self.tracker.update(self.time, self.target_distance(), goal_met)
        if task.kind is TaskKind.PLACE and task.place is not None:
            centre, _, _ = self.place_surface(task.place)
            distance = float(np.linalg.norm(self.object_position(task.target)[:2] - centre))
            return self.tracker.update(self.time, distance, self.rests_on(task.target, task.place))
        return self.tracker.update(self.time, self.target_distance())

    def _drive_base(self) -> None:
        base = self.spec.base
        assert base is not None
        linear, angular = self._command
        yaw = self.data.qpos[self._joint_qpos[base.planar_joints[2]]]
        ctrl = self.data.ctrl
        ctrl[self._actuator(base.planar_joints[0])] = linear * math.cos(yaw)
        ctrl[self._actuator(base.planar_joints[1])] = linear * math.sin(yaw)
        ctrl[self._actuator(base.planar_joints[2])] = angular
        half_track = base.wheel_separation / 2
        left, right = base.wheel_joints
        ctrl[self._actuator(left)] = (linear - angular * half_track) / base.wheel_radius
        ctrl[self._actuator(right)] = (linear + angular * half_track) / base.wheel_radius

    def _place_robot(self, rng: np.random.Generator) -> None:
        for name, angle in self.spec.home_pose.items():
            self.data.qpos[self._joint_qpos[name]] = angle
        gripper = self.spec.gripper
        if self.spec.home_noise > 0:
            for name in self.spec.joint_names:
                if gripper is not None and name == gripper.joint:
                    continue  # the gripper starts open, always
                self.data.qpos[self._joint_qpos[name]] += rng.uniform(
                    -self.spec.home_noise, self.spec.home_noise
                )
        for name in self.spec.joint_names:
            joint = self._id(mujoco.mjtObj.mjOBJ_JOINT, name)
            if self.model.jnt_limited[joint]:
                low, high = self.model.jnt_range[joint]
                address = self._joint_qpos[name]
                self.data.qpos[address] = np.clip(self.data.qpos[address], low, high)
        if gripper is not None:
            self._mirror_finger(gripper.joint)
        base = self.spec.base
        if base is not None:
            x_joint, y_joint, yaw_joint = base.planar_joints
            self.data.qpos[self._joint_qpos[x_joint]] = rng.uniform(-1, 1) * base.start_area
            self.data.qpos[self._joint_qpos[y_joint]] = rng.uniform(-1, 1) * base.start_area
            self.data.qpos[self._joint_qpos[yaw_joint]] = rng.uniform(-math.pi, math.pi)

    def _mirror_finger(self, joint_name: str) -> None:
        """Start the joints an equality couples to the finger joint (the other finger) where the
        equality puts them, so the constraint does not yank them there in the first step."""
        joint = self._id(mujoco.mjtObj.mjOBJ_JOINT, joint_name)
        for index in range(self.model.neq):
            if (
                self.model.eq_type[index] == mujoco.mjtEq.mjEQ_JOINT
                and self.model.eq_obj2id[index] == joint
            ):
                follower = self.model.eq_obj1id[index]
                offset, gain = self.model.eq_data[index][:2]
                self.data.qpos[self.model.jnt_qposadr[follower]] = (
                    offset + gain * self.data.qpos[self._joint_qpos[joint_name]]
                )

    def _place_objects(self, rng: np.random.Generator) -> None:
        placement = self.spec.placement
        robot_xy = None
        if self.spec.base is not None:
            robot_xy = self.joint_positions(self.spec.base.planar_joints[:2])
        placed: list[np.ndarray] = []
        for _ in range(_PLACEMENT_TRIES):
            candidate = np.array([rng.uniform(*placement.x_range), rng.uniform(*placement.y_range)])
            if any(np.linalg.norm(candidate - other) < placement.min_spacing for other in placed):
                continue
            if (
                robot_xy is not None
                and np.linalg.norm(candidate - robot_xy) < placement.robot_clearance
            ):
                continue
            placed.append(candidate)
            if len(placed) == len(self.objects):
                break
        else:
            raise RuntimeError(f"scene {self.spec.name!r}: objects do not fit their placement area")
        for obj, xy in zip(self.objects, placed, strict=True):
            self._put(obj, xy)
        if self.places:
            self._place_places(rng, placed)

    def _show_objects(self, rng: np.random.Generator) -> None:
        """Draw the episode's objects (vla_ros.sim.objects) and give each a body of its shape,
        painted its colour; the bodies not drawn are hidden below the floor, touching nothing."""
        object_set = self.spec.objects
        assert object_set is not None
        used: Counter[str] = Counter()
        shown = []
        for colour, shape in object_set.draw(rng, self.unseen_combinations):
            shown.append(SceneObject(colour, shape, f"{_OBJECT_PREFIX}{shape}_{used[shape]}"))
            used[shape] += 1
        self.objects = tuple(shown)
        colour_of = {obj.body: object_set.colours[obj.colour] for obj in shown}
        for index, (body_name, geoms) in enumerate(self._pool.items()):
            body = self._id(mujoco.mjtObj.mjOBJ_BODY, body_name)
            rgb = colour_of.get(body_name)
            for geom, seen, contype, conaffinity in geoms:
                visible = rgb is not None and seen
                self.model.geom_rgba[geom] = (*rgb, 1.0) if visible else (0.0, 0.0, 0.0, 0.0)
                self.model.geom_contype[geom] = contype if rgb is not None else 0
                self.model.geom_conaffinity[geom] = conaffinity if rgb is not None else 0
            # A hidden free body floats where it is put instead of falling for ever.
            self.model.body_gravcomp[body] = 0.0 if rgb is not None else 1.0
            if rgb is None:
                self._put(SceneObject("", "", body_name), np.array([50.0 + index, 50.0]), -10.0)

    def _pool_geoms(self) -> dict[str, list[tuple[int, bool, int, int]]]:
        """The bodies a compositional scene draws from, each with its geoms: (id, seen, contype,
        conaffinity) as built; unseen geoms (a capsule's foot) stay unseen."""
        pool: dict[str, list[tuple[int, bool, int, int]]] = {}
        for body in range(self.model.nbody):
            name = self.model.body(body).name
            if not name.startswith(_OBJECT_PREFIX):
                continue
            first = int(self.model.body_geomadr[body])
            pool[name] = [
                (
                    geom,
                    bool(self.model.geom_rgba[geom][3] > 0),
                    int(self.model.geom_contype[geom]),
                    int(self.model.geom_conaffinity[geom]),
                )
                for geom in range(first, first + int(self.model.body_geomnum[body]))
            ]
        return pool

    def _place_places(self, rng: np.random.Generator, objects_xy: list[np.ndarray]) -> None:
        area = self.spec.place_placement
        if area is None:
            raise ValueError(f"scene {self.spec.name!r} has places but no place_placement")
        for _ in range(_PLACEMENT_TRIES):
            first_side = rng.choice([-1.0, 1.0])
            spots = [
                np.array([rng.uniform(*area.x_range), side * rng.uniform(*area.y_range)])
                for side in (first_side * (-1) ** index for index in range(len(self.places)))
            ]
            if all(
                np.linalg.norm(spot - other) >= area.min_spacing
                for spot in spots
                for other in objects_xy
            ):
                break
        else:
            raise RuntimeError(f"scene {self.spec.name!r}: places do not fit beside the objects")
        for place, xy in zip(self.places, spots, strict=True):
            self._put(place, xy)

    def _put(self, obj: SceneObject, xy: np.ndarray, height: float | None = None) -> None:
        """Stand an object (or a place) at `xy`, upright, at `height` (default: the height the
        MJCF rests it at)."""
        body = self._id(mujoco.mjtObj.mjOBJ_BODY, obj.body)
        z = self.model.body_pos[body, 2] if height is None else height
        position = np.array([xy[0], xy[1], z])
        mocap = self.model.body_mocapid[body]
        if mocap >= 0:
            self.data.mocap_pos[mocap] = position
            return
        address = int(self.model.jnt_qposadr[self.model.body_jntadr[body]])
        self.data.qpos[address : address + 3] = position
        self.data.qpos[address + 3 : address + 7] = (1.0, 0.0, 0.0, 0.0)

    def _find_objects(self, prefix: str, required: bool = True) -> tuple[SceneObject, ...]:
        """The bodies named <prefix><colour>_<shape>: fixed (mocap) or free (one free joint)."""
        objects = []
        for body in range(self.model.nbody):
            name = self.model.body(body).name
            if not name.startswith(prefix):
                continue
            colour, _, shape = name[len(prefix) :].partition("_")
            free = (
                self.model.body_jntnum[body] == 1
                and self.model.jnt_type[self.model.body_jntadr[body]] == mujoco.mjtJoint.mjJNT_FREE
            )
            if not (self.model.body_mocapid[body] >= 0 or free) or not shape:
                raise ValueError(
                    f"{self.spec.model_file}: body {name!r} must be a mocap body or have one free "
                    f"joint, and be named {prefix}<colour>_<shape>"
                )
            objects.append(SceneObject(colour, shape, name))
        if required and not objects:
            raise ValueError(f"{self.spec.model_file} has no {prefix}* bodies")
        return tuple(objects)

    def _all_joint_names(self) -> tuple[str, ...]:
        # Objects' free joints have no names: they are not the robot's.
        names = (self.model.joint(j).name for j in range(self.model.njnt))
        return tuple(name for name in names if name)

    def _qpos_address(self, joint_name: str) -> int:
        return int(self.model.jnt_qposadr[self._id(mujoco.mjtObj.mjOBJ_JOINT, joint_name)])

    def _actuator(self, name: str) -> int:
        return self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, name)

    def _id(self, kind: mujoco.mjtObj, name: str) -> int:
        index = mujoco.mj_name2id(self.model, kind, name)
        if index < 0:
            raise ValueError(f"{self.spec.model_file} has no {kind.name[6:].lower()} {name!r}")
        return index


# Rendering runs on the CPU (Mesa llvmpipe), where MuJoCo's defaults cost 22-45 ms a frame. Shadows
# are most of it; 4x multisampling and finely tessellated round geoms most of the rest. Without
# them a frame costs 0.4-2.4 ms (docs/simulator.md has the measurements); a picture resized to
# 64x64 loses nothing by it.
_SLOW_RENDER_FLAGS = (
    mujoco.mjtRndFlag.mjRND_SHADOW,
    mujoco.mjtRndFlag.mjRND_REFLECTION,
    mujoco.mjtRndFlag.mjRND_SKYBOX,
)


def _configure_fast_rendering(model: mujoco.MjModel, width: int, height: int) -> None:
    quality = model.vis.quality
    quality.offsamples = 0
    quality.numslices = 16
    quality.numstacks = 8
    # The offscreen buffer only needs the camera's size (the renderer refuses larger pictures).
    model.vis.global_.offwidth = width
    model.vis.global_.offheight = height


def _half_height(model: mujoco.MjModel, geom: int) -> float:
    """How far a z-aligned primitive geom reaches above its centre."""
    radius, half_length, half_z = model.geom_size[geom]
    heights = {
        mujoco.mjtGeom.mjGEOM_SPHERE: radius,
        mujoco.mjtGeom.mjGEOM_CAPSULE: radius + half_length,
        mujoco.mjtGeom.mjGEOM_CYLINDER: half_length,
        mujoco.mjtGeom.mjGEOM_BOX: half_z,
        mujoco.mjtGeom.mjGEOM_ELLIPSOID: half_z,
    }
    kind = mujoco.mjtGeom(model.geom_type[geom])
    if kind not in heights:
        raise ValueError(
            f"objects must be spheres, capsules, cylinders, boxes or ellipsoids, not {kind.name}"
        )
    return float(heights[kind])


# An egg is the scene's sphere stretched along x and squashed across (as long as the sphere is
# wide, so a gripper that holds the sphere holds it), lying on its side.
_EGG_RADII = (1.0, 0.75, 0.75)


def _compositional_xml(spec: SceneSpec) -> str:
    """The scene's MJCF with its objects replaced by `max_per_shape` bodies of each shape of
    `spec.objects`, named object_<shape>_<index>, copied from the MJCF's object of that shape
    (its size, mass, friction; an egg from the sphere)."""
    object_set = spec.objects
    assert object_set is not None
    root = ElementTree.parse(spec.model_path).getroot()
    worldbody = root.find("worldbody")
    if worldbody is None:
        raise ValueError(f"{spec.model_file} has no worldbody")
    templates = {}
    for body in worldbody.findall("body"):
        name = body.get("name", "")
        if name.startswith(_OBJECT_PREFIX):
            templates[name.rpartition("_")[2]] = body
            worldbody.remove(body)
    if "sphere" in templates:
        templates["egg"] = _egg_from(templates["sphere"])
    missing = [shape for shape in object_set.shapes if shape not in templates]
    if missing:
        raise ValueError(f"{spec.model_file} has no object to build {', '.join(missing)} from")
    for shape in object_set.shapes:
        for index in range(object_set.max_per_shape):
            body = copy.deepcopy(templates[shape])
            body.set("name", f"{_OBJECT_PREFIX}{shape}_{index}")
            worldbody.append(body)
    return ElementTree.tostring(root, encoding="unicode")


def _egg_from(sphere: ElementTree.Element) -> ElementTree.Element:
    egg = copy.deepcopy(sphere)
    geom = egg.find("geom")
    assert geom is not None
    radius = float(geom.get("size", "0").split()[0])
    radii = [radius * scale for scale in _EGG_RADII]
    geom.set("type", "ellipsoid")
    geom.set("size", " ".join(f"{r:.4f}" for r in radii))
    x, y, z = (float(v) for v in egg.get("pos", "0 0 0").split())
    egg.set("pos", f"{x} {y} {z - radius + radii[2]:.4f}")
    return egg
