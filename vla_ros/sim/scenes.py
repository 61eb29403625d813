"""The simulator's scenes described as data: one world implementation runs all three.

A scene is an MJCF file under `vla_ros/sim/assets/` plus a SceneSpec saying how it is driven
(a twist for the mobile base, joint velocities for the arm and the humanoid), what /joint_states
reports, the command limits, how objects are placed per episode and how a task is judged.
Objects are the bodies named `object_<colour>_<shape>` in the MJCF, places to put them down
(a plate, a bowl) the bodies named `place_<colour>_<shape>`; tasks find both by those words.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from vla_ros.paths import package_data_dir
from vla_ros.sim.objects import COMPOSITIONAL, ObjectSet
from vla_ros.sim.tasks import PHRASINGS, TaskKind

CONTROL_PERIOD = 0.1  # seconds: the fusion node's default 10 Hz


class Drive(enum.Enum):
    """How commands move the robot; matches the safety node's output modes."""

    TWIST = "twist"
    JOINT_VELOCITY = "joint_velocity"


@dataclass(frozen=True)
class DiffDriveBase:
    """A differential-drive base moving on planar joints (x, y, yaw) with two spinning wheels."""

    wheel_radius: float
    wheel_separation: float
    planar_joints: tuple[str, str, str] = ("base_x", "base_y", "base_yaw")
    wheel_joints: tuple[str, str] = ("left_wheel_joint", "right_wheel_joint")
    start_area: float = 1.0  # the base starts anywhere in [-start_area, start_area]^2


@dataclass(frozen=True)
class Effector:
    """A point that touches targets (a fingertip, a hand) and the joints that move it."""

    site: str
    joints: tuple[str, ...]


@dataclass(frozen=True)
class Gripper:
    """A parallel gripper: one position-controlled finger joint (the opening of each finger),
    commanded by velocity like every other joint: its position target moves at the commanded
    velocity within the joint's range, as ros2_control's forward command controller feeding a
    position-controlled gripper does. The second finger mirrors it (an equality in the MJCF)."""

    joint: str  # also the name of its position actuator
    finger_bodies: tuple[str, str]  # what must touch an object for it to be held
    site: str  # between the finger pads: where a grasped object is held
    open_position: float  # the finger joint's position when the gripper starts an episode


@dataclass(frozen=True)
class Gaze:
    """A head that can look at the target: yaw and pitch joints and the body they turn."""

    yaw_joint: str
    pitch_joint: str
    head_body: str


@dataclass(frozen=True)
class Placement:
    """Where objects go at random each episode: a rectangle on their support, kept apart."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    min_spacing: float  # between object centres
    robot_clearance: float = 0.0  # from the mobile base's start position


@dataclass(frozen=True)
class SceneSpec:
    """Everything about a scene that is not in its MJCF."""

    name: str
    model_file: str
    camera: str
    task_kind: TaskKind
    drive: Drive
    joint_names: tuple[str, ...]  # published on /joint_states, in this order
    action_names: tuple[str, ...]  # the command channels, in apply_command's order
    action_limits: tuple[float, ...]  # the largest |command| per channel (m/s, rad/s)
    success_distance: float  # metres: the task succeeds when the robot is this close
    episode_timeout: float  # seconds of simulated time
    placement: Placement
    control_period: float = CONTROL_PERIOD
    # Where places (a plate, a bowl) go: drawn after the objects (so these stand where they
    # stood before the scene had places), `min_spacing` from every object, on alternate sides of
    # the table (y_range is the distance from its centre line; the first side is drawn).
    place_placement: Placement | None = None
    base: DiffDriveBase | None = None
    effectors: tuple[Effector, ...] = ()
    gaze: Gaze | None = None
    gripper: Gripper | None = None
    home_pose: Mapping[str, float] = field(default_factory=dict)
    home_noise: float = (
        0.0  # radians of uniform noise on every joint of the home pose but a gripper's
    )
    # Objects drawn per episode from colours x shapes (`compositional`); None: the MJCF's own
    # objects, the same every episode (what the shipped checkpoints were trained on).
    objects: ObjectSet | None = None

    def __post_init__(self) -> None:
        if len(self.action_names) != len(self.action_limits):
            raise ValueError(f"{self.name}: one limit per action channel")
        if (self.drive is Drive.TWIST) != (self.base is not None):
            raise ValueError(f"{self.name}: a twist-driven scene needs a base, and only it")
        if self.drive is Drive.JOINT_VELOCITY and self.action_names != self.joint_names:
            raise ValueError(f"{self.name}: joint-velocity actions must follow joint_names")

    @property
    def task_kinds(self) -> tuple[TaskKind, ...]:
        """What the robot can be asked to do; the first is what a plain instruction means."""
        if self.gripper is None:
            return (self.task_kind,)
        return (self.task_kind, TaskKind.PICK, TaskKind.PLACE)

    @property
    def model_path(self) -> Path:
        return package_data_dir("sim", "assets") / self.model_file


_TABLE_OBJECTS = dict(min_spacing=0.12)
_ARM_JOINTS = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
_ARM_GRIPPER = Gripper(
    joint="gripper_finger_joint",
    finger_bodies=("left_finger", "right_finger"),
    site="grip",
    open_position=0.045,  # metres: a 9 cm opening, for objects up to 6.4 cm across
)
# The finger channel: metres per second, as fast as common electric grippers close.
_GRIPPER_SPEED_LIMIT = 0.1
_ARM_SIDE_JOINTS = (
    "shoulder_pitch_joint",
    "shoulder_roll_joint",
    "shoulder_yaw_joint",
    "elbow_joint",
    "wrist_pitch_joint",
    "wrist_roll_joint",
)
_LEFT_ARM = tuple(f"left_{joint}" for joint in _ARM_SIDE_JOINTS)
_RIGHT_ARM = tuple(f"right_{joint}" for joint in _ARM_SIDE_JOINTS)
_HUMANOID_JOINTS = (
    "torso_yaw_joint",
    "neck_yaw_joint",
    "neck_pitch_joint",
    *_LEFT_ARM,
    *_RIGHT_ARM,
)
# Elbows bent and out, hands above the table's near corners (at the edges of the picture, not in
# front of the objects); the head looks down at the table.
_HUMANOID_ARM_HOME = {"shoulder_pitch_joint": 0.2, "shoulder_roll_joint": 0.5, "elbow_joint": 1.5}

SCENES: dict[str, SceneSpec] = {
    spec.name: spec
    for spec in (
        SceneSpec(
            name="mobile",
            model_file="mobile.xml",
            camera="front",
            task_kind=TaskKind.GO_TO,
            drive=Drive.TWIST,
            joint_names=("left_wheel_joint", "right_wheel_joint"),
            action_names=("linear_x", "angular_z"),
            action_limits=(0.5, 1.5),  # the safety node's default max_linear/angular_speed
            # The prototype's threshold: about 15 cm between the base's and the object's edges.
            success_distance=0.45,
            episode_timeout=20.0,
            placement=Placement((-2.0, 2.0), (-2.0, 2.0), min_spacing=0.8, robot_clearance=1.0),
            base=DiffDriveBase(wheel_radius=0.06, wheel_separation=0.4),
        ),
        SceneSpec(
            name="arm",
            model_file="arm.xml",
            camera="overhead",
            task_kind=TaskKind.REACH,
            drive=Drive.JOINT_VELOCITY,
            joint_names=(*_ARM_JOINTS, _ARM_GRIPPER.joint),
            action_names=(*_ARM_JOINTS, _ARM_GRIPPER.joint),
            # The safety node's max_joint_velocity for the arm's joints.
            action_limits=(1.0,) * len(_ARM_JOINTS) + (_GRIPPER_SPEED_LIMIT,),
            success_distance=0.04,
            episode_timeout=10.0,
            placement=Placement((0.3, 0.62), (-0.3, 0.3), **_TABLE_OBJECTS),
            # Beside the objects' area, within comfortable reach.
            # The bowl's rim (8.5 cm) and an open finger (6 cm) apart from an object's centre.
            place_placement=Placement((0.12, 0.40), (0.40, 0.44), min_spacing=0.16),
            effectors=(Effector("fingertip", _ARM_JOINTS),),
            gripper=_ARM_GRIPPER,
            home_pose={
                "shoulder_lift_joint": 0.5,
                "elbow_joint": 1.3,
                "wrist_1_joint": 1.0,
                _ARM_GRIPPER.joint: _ARM_GRIPPER.open_position,
            },
            home_noise=0.15,
        ),
        SceneSpec(
            name="humanoid",
            model_file="humanoid.xml",
            camera="head",
            task_kind=TaskKind.REACH,
            drive=Drive.JOINT_VELOCITY,
            joint_names=_HUMANOID_JOINTS,
            action_names=_HUMANOID_JOINTS,
            action_limits=(1.0,) * len(_HUMANOID_JOINTS),
            success_distance=0.04,
            episode_timeout=10.0,
            placement=Placement((0.33, 0.5), (-0.35, 0.35), **_TABLE_OBJECTS),
            effectors=(
                Effector("left_hand", ("torso_yaw_joint", *_LEFT_ARM)),
                Effector("right_hand", ("torso_yaw_joint", *_RIGHT_ARM)),
            ),
            gaze=Gaze("neck_yaw_joint", "neck_pitch_joint", "head"),
            home_pose={
                "neck_pitch_joint": 0.9,
                **{
                    f"{side}_{joint}": angle
                    for side in ("left", "right")
                    for joint, angle in _HUMANOID_ARM_HOME.items()
                },
            },
            home_noise=0.1,
        ),
    )
}


def scene_spec(scene: str | SceneSpec) -> SceneSpec:
    """The spec of a scene by name (a spec is its own); the error lists the known scenes."""
    if isinstance(scene, SceneSpec):
        return scene
    try:
        return SCENES[scene]
    except KeyError:
        raise ValueError(f"unknown scene {scene!r}; known scenes: {', '.join(SCENES)}") from None


OBJECT_CHOICES = ("fixed", "compositional")  # what `scene_with_objects` takes


def scene_with_objects(name: str, objects: str = "fixed") -> SceneSpec:
    """The scene `name` with its MJCF's own objects ("fixed") or ones drawn per episode
    ("compositional"), as `vla-ros eval --objects` and `vla-ros train --objects` say."""
    if objects not in OBJECT_CHOICES:
        raise ValueError(f"objects are one of {', '.join(OBJECT_CHOICES)}, not {objects!r}")
    return compositional(name) if objects == "compositional" else scene_spec(name)


def compositional(scene: str | SceneSpec, objects: ObjectSet = COMPOSITIONAL) -> SceneSpec:
    """The scene with its objects drawn per episode from `objects` (vla_ros.sim.objects); the
    MJCF's objects serve as the shapes' templates (an egg is made from the sphere)."""
    return replace(scene_spec(scene), objects=objects)


def default_instruction(scene: str) -> str:
    """What `vla-ros sim` tells the robot unless told otherwise: the scene's first training
    phrasing for its red cube ("go to the red cube" for a base, "reach the red cube" for arms)."""
    return PHRASINGS[scene_spec(scene).task_kind].train[0].format(object="red cube")
