"""Natural-language goals for the simulator: which object an instruction names, and how a task ends.

An instruction names its target by colour and/or shape ("go to the red cube", "reach the ball",
"touch the blue one"), with common synonyms (block = cube, ball = sphere, can = cylinder, ...).
A stop command ("stop", "halt", "freeze") is not a task: it leaves the current task as it is.
An instruction whose object is not in the scene gives a task with no target and the reason, so
the status can say "unknown target" instead of the simulator failing.

ROS-free and MuJoCo-free: the world measures distances, this module turns them into a status.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from vla_ros.logic.commands import InvalidCommand, parse_command

# Canonical colour -> the words that name it. Colours that no scene uses are listed too, so that
# "the purple cube" is an absent object rather than a plain "cube".
COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "green": ("green", "lime"),
    "blue": ("blue", "navy", "azure"),
    "yellow": ("yellow", "golden", "gold"),
    "purple": ("purple", "violet", "magenta"),
    "orange": ("orange",),
    "white": ("white",),
    "black": ("black",),
    "pink": ("pink",),
    "brown": ("brown",),
    "grey": ("grey", "gray"),
}

# Canonical shape -> the nouns that name it (singular; a trailing "s" is accepted too).
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "cube": ("cube", "box", "block", "crate", "brick"),
    "sphere": ("sphere", "ball", "orb", "globe"),
    "cylinder": ("cylinder", "can", "tube", "tin", "barrel"),
    "capsule": ("capsule", "pill"),
    "cone": ("cone",),
    "pyramid": ("pyramid",),
    "ring": ("ring", "torus"),
}

# The nouns demonstrations use; the rest of SHAPE_WORDS is held out to test grounding of object
# words a policy never saw in training (the prototype lost 40 points of success on them).
TRAIN_NOUNS: dict[str, tuple[str, ...]] = {
    "cube": ("cube", "box"),
    "sphere": ("ball",),
    "cylinder": ("cylinder",),
    "capsule": ("capsule",),
}
HELD_OUT_NOUNS: dict[str, tuple[str, ...]] = {
    "cube": ("block", "crate"),
    "sphere": ("sphere", "orb"),
    "cylinder": ("can", "tube"),
    "capsule": ("pill",),
}

_WORD = re.compile(r"[a-z]+")
_COLOUR_OF = {word: colour for colour, words in COLOUR_WORDS.items() for word in words}
_SHAPE_OF = {word: shape for shape, words in SHAPE_WORDS.items() for word in words}


class TaskKind(enum.Enum):
    """What the robot does with the target: drive to it, or touch it with a hand."""

    GO_TO = "go_to"
    REACH = "reach"


@dataclass(frozen=True)
class Phrasings:
    """Sentence templates with an `{object}` slot: those for training, those held out."""

    train: tuple[str, ...]
    held_out: tuple[str, ...]


PHRASINGS: dict[TaskKind, Phrasings] = {
    TaskKind.GO_TO: Phrasings(
        train=(
            "go to the {object}",
            "drive to the {object}",
            "move to the {object}",
            "head towards the {object}",
            "find the {object}",
        ),
        held_out=(
            "navigate to the {object}",
            "approach the {object}",
            "please get close to the {object}",
        ),
    ),
    TaskKind.REACH: Phrasings(
        train=(
            "reach the {object}",
            "touch the {object}",
            "reach for the {object}",
            "put your hand on the {object}",
        ),
        held_out=(
            "move your hand to the {object}",
            "tap the {object}",
            "go and touch the {object}",
        ),
    ),
}


class Split(enum.Enum):
    """Which words an instruction is written with."""

    TRAIN = "train"
    HELD_OUT = "held_out"


@dataclass(frozen=True)
class SceneObject:
    """A target object of a scene: its colour and shape words, and the MuJoCo body it is."""

    colour: str
    shape: str
    body: str

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


def is_stop_command(text: str) -> bool:
    """True when the voice command node would hear a stop in `text` ("please stop", "HALT!")."""
    try:
        return parse_command(text).is_stop
    except InvalidCommand:
        return False


@dataclass(frozen=True)
class Task:
    """An instruction and the object it names; `target` is None when it names none in the scene."""

    instruction: str
    target: SceneObject | None
    reason: str = ""


def make_task(instruction: str, objects: Sequence[SceneObject]) -> Task:
    """The task an instruction asks for, resolving its target among the scene's objects.

    The first colour word and the first shape word are the target's description ("the red cube
    next to the ball" is the red cube); one of the two is enough when it picks a single object.
    """
    words = _WORD.findall(instruction.lower())
    colour = next((_COLOUR_OF[w] for w in words if w in _COLOUR_OF), None)
    shape = next((_SHAPE_OF[s] for s in (_singular(w) for w in words) if s in _SHAPE_OF), None)
    have = ", ".join(obj.name for obj in objects)
    if colour is None and shape is None:
        return Task(instruction, None, f"names no object I know (the scene has: {have})")
    matches = [
        obj
        for obj in objects
        if (colour is None or obj.colour == colour) and (shape is None or obj.shape == shape)
    ]
    wanted = " ".join(part for part in (colour, shape) if part)
    if not matches:
        return Task(instruction, None, f"there is no {wanted} here (the scene has: {have})")
    if len(matches) > 1:
        names = ", ".join(obj.name for obj in matches)
        return Task(instruction, None, f"'{wanted}' is ambiguous: {names}")
    return Task(instruction, matches[0])


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and word[:-1] in _SHAPE_OF else word


def describe(
    target: SceneObject, kind: TaskKind, rng: np.random.Generator, split: Split = Split.TRAIN
) -> str:
    """A random instruction for `target`, written with the training or the held-out words."""
    phrasings = PHRASINGS[kind]
    templates = phrasings.train if split is Split.TRAIN else phrasings.held_out
    nouns = (TRAIN_NOUNS if split is Split.TRAIN else HELD_OUT_NOUNS)[target.shape]
    template = templates[rng.integers(len(templates))]
    noun = nouns[rng.integers(len(nouns))]
    return template.format(object=f"{target.colour} {noun}")


class TaskState(enum.Enum):
    IDLE = "idle"  # no task given yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    TIMED_OUT = "timed_out"
    UNKNOWN_TARGET = "unknown_target"  # the instruction names no object of the scene

    @property
    def finished(self) -> bool:
        return self in (TaskState.SUCCEEDED, TaskState.TIMED_OUT)


@dataclass(frozen=True)
class TaskStatus:
    """Where the current task stands; times are simulation seconds."""

    state: TaskState
    instruction: str = ""
    target: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    distance: float | None = None  # metres from the robot (or hand) to the target
    message: str = ""

    def to_dict(self) -> dict[str, object]:
        values = asdict(self)
        values["state"] = self.state.value
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


class TaskTracker:
    """The status of one task over time: running until success within a distance, or a timeout.

    The outcome is kept once reached (a task that succeeded stays succeeded, with its time, even if
    the robot moves on) until a new task starts.
    """

    def __init__(self, success_distance: float, timeout: float) -> None:
        if success_distance <= 0:
            raise ValueError(f"success_distance must be positive, got {success_distance}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.success_distance = success_distance
        self.timeout = timeout
        self.task: Task | None = None
        self._status = TaskStatus(TaskState.IDLE, message="no task given")

    @property
    def status(self) -> TaskStatus:
        return self._status

    def start(self, task: Task, now: float) -> TaskStatus:
        self.task = task
        if task.target is None:
            self._status = TaskStatus(
                TaskState.UNKNOWN_TARGET, task.instruction, None, now, message=task.reason
            )
        else:
            self._status = TaskStatus(
                TaskState.RUNNING,
                task.instruction,
                task.target.name,
                now,
                message=f"{task.instruction!r}: going for the {task.target.name}",
            )
        return self._status

    def clear(self) -> None:
        """Forget the task (a new episode starts with none)."""
        self.task = None
        self._status = TaskStatus(TaskState.IDLE, message="no task given")

    def update(self, now: float, distance: float | None) -> TaskStatus:
        """Advance with the robot's current distance to the target (None when there is none)."""
        status = self._status
        if status.state is not TaskState.RUNNING or distance is None:
            return status
        started = status.started_at if status.started_at is not None else now
        if distance <= self.success_distance:
            state, message = TaskState.SUCCEEDED, f"reached the {status.target}"
        elif now - started >= self.timeout:
            state, message = TaskState.TIMED_OUT, f"not reached within {self.timeout:g} s"
        else:
            self._status = replace(status, distance=distance)
            return self._status
        self._status = replace(
            status, state=state, finished_at=now, distance=distance, message=message
        )
        return self._status
