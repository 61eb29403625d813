"""SimWorld: one MuJoCo world (any scene) with its camera and its task.

The world is what the sim node, data collection and closed-loop evaluation share. Commands are
in physical units in the scene's `action_names` order (linear_x and angular_z for the mobile base,
joint velocities for the arm and the humanoid), held until the next command, and applied through
velocity servos every physics step. Everything that varies per episode (start pose, object
placement) comes from the episode's seed, so an episode replays exactly from its seed and the
same commands.

Rendering is headless (MUJOCO_GL defaults to EGL, see vla_ros/sim/__init__.py); each world owns
one offscreen renderer, freed by `close()` (or by leaving a `with` block).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import mujoco
import numpy as np

from vla_ros.sim.scenes import Drive, SceneSpec, scene_spec
from vla_ros.sim.tasks import (
    SceneObject,
    TaskKind,
    TaskStatus,
    TaskTracker,
    is_stop_command,
    make_task,
)

DEFAULT_CAMERA_SIZE = (240, 320)  # (height, width): the sim node's default camera
MAX_CAMERA_SIDE = 4096
REACH_CLEARANCE = 0.02  # metres above an object's top where a hand "touches" it
_OBJECT_PREFIX = "object_"
_PLACEMENT_TRIES = 10_000


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
        self.model = mujoco.MjModel.from_xml_path(str(self.spec.model_path))
        _configure_fast_rendering(self.model, width, height)
        self.data = mujoco.MjData(self.model)
        self._renderer: mujoco.Renderer | None = None
        self._gl_thread: ThreadPoolExecutor | None = None
        self._camera_id = self._id(mujoco.mjtObj.mjOBJ_CAMERA, self.spec.camera)
        self.objects = self._find_objects()
        self._joint_qpos = {name: self._qpos_address(name) for name in self._all_joint_names()}
        self._joint_dof = {
            name: int(self.model.jnt_dofadr[self._id(mujoco.mjtObj.mjOBJ_JOINT, name)])
            for name in self._joint_qpos
        }
        self._limits = np.asarray(self.spec.action_limits, dtype=float)
        self._command = np.zeros(len(self.spec.action_names))
        if self.spec.drive is Drive.JOINT_VELOCITY:
            self._command_actuators = np.array(
                [self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, name) for name in self.spec.action_names]
            )
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
        self._place_objects(rng)
        self._command[:] = 0.0
        self.data.ctrl[:] = 0.0
        mujoco.mj_forward(self.model, self.data)
        self.tracker.clear()
        if self._instruction is not None:
            self.tracker.start(make_task(self._instruction, self.objects), self.time)
        return self._update_task()

    def set_instruction(self, text: str) -> TaskStatus:
        """Start the task `text` asks for; a stop command leaves the current task unchanged."""
        if is_stop_command(text):
            return self.task_status()
        self._instruction = text
        self.tracker.start(make_task(text, self.objects), self.time)
        return self._update_task()

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
            self.data.ctrl[self._command_actuators] = self._command

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
        if self.spec.base is None:
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
        body = self._id(mujoco.mjtObj.mjOBJ_BODY, obj.body)
        return self.data.mocap_pos[self.model.body_mocapid[body]].copy()

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
        if self.spec.home_noise > 0:
            for name in self.spec.joint_names:
                self.data.qpos[self._joint_qpos[name]] += rng.uniform(
                    -self.spec.home_noise, self.spec.home_noise
                )
        for name in self.spec.joint_names:
            joint = self._id(mujoco.mjtObj.mjOBJ_JOINT, name)
            if self.model.jnt_limited[joint]:
                low, high = self.model.jnt_range[joint]
                address = self._joint_qpos[name]
                self.data.qpos[address] = np.clip(self.data.qpos[address], low, high)
        base = self.spec.base
        if base is not None:
            x_joint, y_joint, yaw_joint = base.planar_joints
            self.data.qpos[self._joint_qpos[x_joint]] = rng.uniform(-1, 1) * base.start_area
            self.data.qpos[self._joint_qpos[y_joint]] = rng.uniform(-1, 1) * base.start_area
            self.data.qpos[self._joint_qpos[yaw_joint]] = rng.uniform(-math.pi, math.pi)

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
            body = self._id(mujoco.mjtObj.mjOBJ_BODY, obj.body)
            mocap = self.model.body_mocapid[body]
            # Heights stay as the MJCF sets them: each object rests on its support.
            self.data.mocap_pos[mocap, :2] = xy
            self.data.mocap_pos[mocap, 2] = self.model.body_pos[body, 2]

    def _find_objects(self) -> tuple[SceneObject, ...]:
        objects = []
        for body in range(self.model.nbody):
            name = self.model.body(body).name
            if not name.startswith(_OBJECT_PREFIX):
                continue
            colour, _, shape = name[len(_OBJECT_PREFIX) :].partition("_")
            if self.model.body_mocapid[body] < 0 or not shape:
                raise ValueError(
                    f"{self.spec.model_file}: object body {name!r} must be a mocap body named "
                    f"{_OBJECT_PREFIX}<colour>_<shape>"
                )
            objects.append(SceneObject(colour, shape, name))
        if not objects:
            raise ValueError(f"{self.spec.model_file} has no {_OBJECT_PREFIX}* bodies")
        return tuple(objects)

    def _all_joint_names(self) -> tuple[str, ...]:
        return tuple(self.model.joint(j).name for j in range(self.model.njnt))

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
    }
    kind = mujoco.mjtGeom(model.geom_type[geom])
    if kind not in heights:
        raise ValueError(f"objects must be spheres, capsules, cylinders or boxes, not {kind.name}")
    return float(heights[kind])
