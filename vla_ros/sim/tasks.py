"""Natural-language goals for the simulator: which object an instruction names, and how a task ends.

An instruction names its target by colour and/or shape ("go to the red cube", "reach the ball",
"touch the blue one"), with common synonyms (block = cube, ball = sphere, can = cylinder, ...).
On a robot with a gripper it may also ask to pick the object up ("pick up the red cube") or to put
it somewhere ("put the red cube on the blue plate", "in the bowl"): the place is named the same way.
A stop command ("stop", "halt", "freeze") is not a task: it leaves the current task as it is.
An instruction whose object is not in the scene gives a task with no target and the reason, so
the status can say "unknown target" instead of the simulator failing.

ROS-free and MuJoCo-free: the world measures distances and contacts (is the goal met now?), this
module turns them into a status.
"""

from __future__ import annotations

import enum
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
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
    "orange": ("orange", "tangerine"),
    "cyan": ("cyan", "teal", "turquoise"),
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
    "egg": ("egg", "oval"),
    "cone": ("cone",),
    "pyramid": ("pyramid",),
    "ring": ("ring", "torus"),
}

# Colour words demonstrations never use (they use the canonical colour): evaluation only.
HELD_OUT_COLOURS: dict[str, tuple[str, ...]] = {
    colour: words[1:] for colour, words in COLOUR_WORDS.items() if len(words) > 1
}

# The nouns demonstrations use; the rest of SHAPE_WORDS is held out to test grounding of object
# words a policy never saw in training (the prototype lost 40 points of success on them).
TRAIN_NOUNS: dict[str, tuple[str, ...]] = {
    "cube": ("cube", "box"),
    "sphere": ("ball",),
    "cylinder": ("cylinder",),
    "capsule": ("capsule",),
    "egg": ("egg",),
}
HELD_OUT_NOUNS: dict[str, tuple[str, ...]] = {
    "cube": ("block", "crate"),
    "sphere": ("sphere", "orb"),
    "cylinder": ("can", "tube"),
    "capsule": ("pill",),
    "egg": ("oval",),
}

# Places to put objects on or in: canonical shape -> nouns, those for training, held-out ones.
PLACE_WORDS: dict[str, tuple[str, ...]] = {
    "plate": ("plate", "dish", "saucer"),
    "bowl": ("bowl", "basin"),
}
TRAIN_PLACE_NOUNS: dict[str, tuple[str, ...]] = {"plate": ("plate",), "bowl": ("bowl",)}
HELD_OUT_PLACE_NOUNS: dict[str, tuple[str, ...]] = {"plate": ("dish",), "bowl": ("basin",)}
PLACE_PREPOSITIONS = {"plate": "on", "bowl": "in"}  # "on the plate", "in the bowl"
# A verb that asks for the object to be picked up ("pick up", "lift", "grab" ...).
PICK_VERBS = frozenset({"pick", "lift", "grab", "grasp", "raise"})
# Words that lead from the object to the place ("... on the plate", "... to the bowl").
_PLACE_LINKS = frozenset({"on", "onto", "in", "into", "inside", "to"})

_WORD = re.compile(r"[a-z]+")
_COLOUR_OF = {word: colour for colour, words in COLOUR_WORDS.items() for word in words}
_SHAPE_OF = {word: shape for shape, words in SHAPE_WORDS.items() for word in words}
# Words that start a phrase naming what is not meant: "not the green ball", "except the cube";
# "instead of", "rather than", "other than" (the head word followed by "of" or "than").
_NEGATIONS = frozenset({"not", "except", "excluding"})
_NEGATION_HEADS = frozenset({"instead", "rather", "other"})
# Words that pick one of several objects a description fits: (sign, measure); the object with
# the smallest sign x measure is meant.
SPATIAL_WORDS: dict[str, tuple[int, Callable[[Whereabouts], float | None]]] = {
    **dict.fromkeys(("left", "leftmost"), (1, lambda where: where.across)),
    **dict.fromkeys(("right", "rightmost"), (-1, lambda where: where.across)),
    **dict.fromkeys(("nearest", "closest"), (1, lambda where: where.distance)),
    **dict.fromkeys(("farthest", "furthest"), (-1, lambda where: where.distance)),
}
# The words of place demonstrations may use (`sample_task(..., training=True)`); their
# synonyms ("leftmost", "closest" ...) are left to evaluation.
TRAIN_SPATIAL_WORDS = ("left", "right", "nearest", "farthest")
# Nouns that end a description without naming a shape: "the red one", "the blue thing".
_BARE_NOUNS = frozenset({"one", "thing", "object", "item"})
_PLACE_OF = {word: shape for shape, words in PLACE_WORDS.items() for word in words}


class TaskKind(enum.Enum):
    """What the robot does with the target: drive to it, touch it with a hand, pick it up (lift
    it and hold it), or put it on or in a place (and let go)."""

    GO_TO = "go_to"
    REACH = "reach"
    PICK = "pick"
    PLACE = "place"


# How high a picked object must be above where it rested when the task began, and for how long
# it must stay there, held by both fingers.
LIFT_HEIGHT = 0.05  # metres
HOLD_SECONDS = {TaskKind.PICK: 1.0, TaskKind.PLACE: 0.3}  # PLACE: released and at rest this long
# Picking and placing take longer than touching: grasping, lifting, holding, carrying, letting go.
EXTRA_TIME = {TaskKind.PICK: 5.0, TaskKind.PLACE: 15.0}  # seconds on top of the scene's timeout
_DONE = {
    TaskKind.GO_TO: "reached",
    TaskKind.REACH: "reached",
    TaskKind.PICK: "picked up",
    TaskKind.PLACE: "put down",
}


@dataclass(frozen=True)
class Phrasings:
    """Sentence templates with an `{object}` slot: those for training, those held out."""

    train: tuple[str, ...]
    held_out: tuple[str, ...]  # verbs never used in training
    structures: tuple[str, ...] = ()  # training verbs in sentence structures never trained on


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
        structures=(
            "could you go to the {object} for me",
            "the {object}",
            "I need you to drive over to the {object} now",
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
        structures=(
            "would you reach for the {object}",
            "the {object}, touch it",
            "I need you to reach the {object} now",
        ),
    ),
    TaskKind.PICK: Phrasings(
        train=(
            "pick up the {object}",
            "lift the {object}",
            "grab the {object}",
            "pick the {object} up",
        ),
        held_out=(
            "grasp the {object}",
            "raise the {object}",
            "lift up the {object}",
        ),
        structures=(
            "would you pick up the {object}",
            "the {object}, lift it",
        ),
    ),
    # {on}: the place's preposition ("on the plate", "in the bowl").
    TaskKind.PLACE: Phrasings(
        train=(
            "put the {object} {on} the {place}",
            "place the {object} {on} the {place}",
            "move the {object} to the {place}",
        ),
        held_out=(
            "drop the {object} {on} the {place}",
            "set the {object} down {on} the {place}",
            "transfer the {object} to the {place}",
        ),
        structures=(
            "would you put the {object} {on} the {place}",
            "the {object} should go {on} the {place}",
        ),
    ),
}


class Split(enum.Enum):
    """How an instruction is written: with the training wording, or with one thing about it that
    training never shows (evaluation splits: `vla-ros eval --split`, `--language-report`)."""

    TRAIN = "train"
    HELD_OUT = "held_out"  # verbs and object nouns never used in training
    STRUCTURE = "structure"  # sentence structures never used in training, training words
    COLOURS = "colours"  # colour words never used in training ("crimson", "navy")
    NOUNS = "nouns"  # object nouns never used in training ("brick", "orb")
    COLOURS_AND_NOUNS = "colours_and_nouns"  # both
    DISTRACTOR = "distractor"  # another object named as not meant ("..., not the green ball")
    ATTRIBUTE = "attribute"  # colour or shape alone, where it is unique ("the ball")
    SPATIAL = "spatial"  # where the object is ("the left cube", "the nearest one")
    # Commands that name nothing here, to be refused (the robot stopped within 1 s, nothing
    # reached): an object of familiar words that is not there ("the red egg" beside a red cube
    # and a green egg), a description that fits several ("the cube" with two cubes; "the
    # object"), and words that name no object at all.
    ABSENT = "absent"
    AMBIGUOUS = "ambiguous"
    NONSENSE = "nonsense"
    # A colour-shape combination never shown in training ("the red ball" where training only
    # ever showed red things that are not balls and balls that are not red); compositional scenes
    # (vla_ros.sim.objects) only.
    COMBINATIONS = "combinations"


@dataclass(frozen=True)
class SceneObject:
    """An object (or a place) of a scene: its colour and shape words, and the MuJoCo body it is."""

    colour: str
    shape: str
    body: str

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Whereabouts:
    """Where an object is as the robot sees it, for "the left cube" or "the nearest ball"."""

    across: float | None  # in the camera picture: -1 left edge ... 1 right edge; None: not seen
    distance: float  # metres from the robot (its hand, on a robot that reaches)


def is_stop_command(text: str) -> bool:
    """True when the voice command node would hear a stop in `text` ("please stop", "HALT!")."""
    try:
        return parse_command(text).is_stop
    except InvalidCommand:
        return False


@dataclass(frozen=True)
class Task:
    """An instruction, what it asks for and the object it names (and, to put it down, the place);
    `target` is None when the instruction names none in the scene, or no place to put it."""

    instruction: str
    target: SceneObject | None
    reason: str = ""
    kind: TaskKind = TaskKind.REACH
    place: SceneObject | None = None


def make_task(
    instruction: str,
    objects: Sequence[SceneObject],
    places: Sequence[SceneObject] = (),
    kinds: Sequence[TaskKind] = (TaskKind.REACH,),
    whereabouts: Mapping[str, Whereabouts] | None = None,
) -> Task:
    """The task an instruction asks for, resolving its target among the scene's objects.

    `kinds` are what the robot can do, the first being what an instruction means when it neither
    asks to pick something up (a verb of PICK_VERBS) nor names a place to put it. The first colour
    word and the first shape word are the target's description ("the red cube next to the ball"
    is the red cube); one of the two is enough when it picks a single object. To put an object
    down, the words from the one that leads to the place ("on", "in", "to" ...) name the place,
    resolved the same way among `places`; the words before it name the object. A phrase after
    "not", "except", "instead of", "rather than" or "other than" names what is not meant ("the
    red cube, not the green ball"; "the cube that is not red"): it never makes the target, and
    objects it describes are left out. When a description fits several, a word of place picks
    one by `whereabouts` (per body): "left"/"leftmost", "right"/"rightmost" in the robot's
    picture, "nearest"/"closest", "farthest"/"furthest" from the robot ("the left cube", "the
    ball nearest you").
    """
    # "don't" -> "do not": what follows is what is not meant.
    words = _WORD.findall(instruction.lower().replace("n't", " not"))
    kind = _kind_of(words, kinds[0])
    if kind not in kinds:
        return Task(instruction, None, f"asks to {_ASKS[kind]}, which this robot cannot do", kind)
    place_words: list[str] = []
    if kind is TaskKind.PLACE:
        split = _place_phrase_start(words)
        words, place_words = words[:split], words[split:]
    where = whereabouts or {}
    target, reason = _resolve(words, objects, _SHAPE_OF, "object", where)
    if target is None or kind is not TaskKind.PLACE:
        return Task(instruction, target, reason, kind)
    place, reason = _resolve(place_words, places, _PLACE_OF, "place", where)
    if place is None:
        return Task(instruction, None, reason, kind)
    return Task(instruction, target, kind=kind, place=place)


_ASKS = {TaskKind.PICK: "pick something up", TaskKind.PLACE: "put something down"}


def _kind_of(words: Sequence[str], default: TaskKind) -> TaskKind:
    if any(_singular(word, _PLACE_OF) in _PLACE_OF for word in words):
        return TaskKind.PLACE
    if PICK_VERBS.intersection(words):
        return TaskKind.PICK
    return default


def _place_phrase_start(words: Sequence[str]) -> int:
    """Where the words naming the place begin: at the link word before the first place noun
    ("put the red cube | on the blue plate"), else at that noun."""
    noun = next(i for i, word in enumerate(words) if _singular(word, _PLACE_OF) in _PLACE_OF)
    return next((i for i in range(noun - 1, -1, -1) if words[i] in _PLACE_LINKS), noun)


def _resolve(
    words: Sequence[str],
    candidates: Sequence[SceneObject],
    shape_of: dict[str, str],
    what: str,
    whereabouts: Mapping[str, Whereabouts],
) -> tuple[SceneObject | None, str]:
    """The one candidate the words describe, or None and the reason."""
    wanted, unwanted, rest = _phrases(words, shape_of)
    colour, shape = _attributes(wanted, shape_of)
    excluded = [_attributes(phrase, shape_of) for phrase in unwanted]
    excluded = [pair for pair in excluded if pair != (None, None)]
    spatial = next((w for w in (*wanted, *rest) if w in SPATIAL_WORDS), None)
    have = ", ".join(obj.name for obj in candidates) or "none"
    bare = any(word in _BARE_NOUNS for word in wanted)  # "the object" fits every one
    if colour is None and shape is None and not excluded and spatial is None and not bare:
        return None, f"names no {what} I know (the scene has: {have})"
    matches = [
        obj
        for obj in candidates
        if _fits(obj, colour, shape) and not any(_fits(obj, *pair) for pair in excluded)
    ]
    wanted_words = " ".join(part for part in (colour, shape) if part) or what
    if excluded:
        wanted_words += " other than the " + " or the ".join(_named(*pair) for pair in excluded)
    if not matches:
        return None, f"there is no {wanted_words} here (the scene has: {have})"
    if len(matches) > 1:
        chosen = pick_by_place(matches, spatial, whereabouts) if spatial else None
        if chosen is not None:
            return chosen, ""
        names = ", ".join(obj.name for obj in matches)
        how = f" and '{spatial}' does not tell them apart here" if spatial else ""
        return None, f"'{wanted_words}' is ambiguous: {names}{how}"
    return matches[0], ""


def pick_by_place(
    matches: Sequence[SceneObject], word: str, whereabouts: Mapping[str, Whereabouts]
) -> SceneObject | None:
    """The one of `matches` that `word` (one of SPATIAL_WORDS) picks, if where they all are is
    known (for "left" and "right": all of them in the picture)."""
    sign, measure = SPATIAL_WORDS[word]
    values: list[float] = []
    for obj in matches:
        where = whereabouts.get(obj.body)
        value = None if where is None else measure(where)
        if value is None:
            return None
        values.append(sign * value)
    best = min(range(len(matches)), key=values.__getitem__)
    return matches[best]


def _phrases(
    words: Sequence[str], shape_of: dict[str, str]
) -> tuple[list[str], list[list[str]], list[str]]:
    """(the words of the phrase that describes the target, the phrases that say what is not
    meant, the other words). The target's phrase ends at its noun, so "the cube next to the red
    ball" describes a cube; a negated phrase runs from its negation to its noun (or to the end)."""
    wanted: list[str] = []
    unwanted: list[list[str]] = []
    rest: list[str] = []
    negated: list[str] | None = None
    wanted_done = False
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        if word in _NEGATIONS or (word in _NEGATION_HEADS and following in ("of", "than")):
            negated = []
            unwanted.append(negated)
            continue
        is_noun = _singular(word, shape_of) in shape_of or word in _BARE_NOUNS
        if negated is not None:
            negated.append(word)
            if is_noun:
                negated = None
        elif not wanted_done:
            wanted.append(word)
            wanted_done = is_noun
        else:
            rest.append(word)
    return wanted, unwanted, rest


def _attributes(words: Sequence[str], shape_of: dict[str, str]) -> tuple[str | None, str | None]:
    """(colour, shape) as the words name them: the first of each, None where none is named."""
    colour = next((_COLOUR_OF[w] for w in words if w in _COLOUR_OF), None)
    shape = next(
        (shape_of[s] for s in (_singular(w, shape_of) for w in words) if s in shape_of), None
    )
    return colour, shape


def _named(colour: str | None, shape: str | None) -> str:
    return f"{colour} one" if shape is None else " ".join(filter(None, (colour, shape)))


def _fits(obj: SceneObject, colour: str | None, shape: str | None) -> bool:
    return (colour is None or obj.colour == colour) and (shape is None or obj.shape == shape)


def _singular(word: str, nouns: dict[str, str] = _SHAPE_OF) -> str:
    return word[:-1] if word.endswith("s") and word[:-1] in nouns else word


def describe(
    target: SceneObject,
    kind: TaskKind,
    rng: np.random.Generator,
    split: Split = Split.TRAIN,
    place: SceneObject | None = None,
    others: Sequence[SceneObject] = (),
    reference: str | None = None,
) -> str:
    """A random instruction for `target` (to be put on or in `place`, for PLACE), written as
    `split` says. `others`: the scene's other objects, for the splits that name a distractor or
    need an attribute to be unique; `reference`: how to name the target instead ("nearest one")."""
    phrasings = PHRASINGS[kind]
    templates = {Split.HELD_OUT: phrasings.held_out, Split.STRUCTURE: phrasings.structures}.get(
        split, phrasings.train
    )
    template = _pick(rng, templates)
    obj = reference if reference is not None else _object_phrase(target, rng, split, others)
    if kind is not TaskKind.PLACE:
        return template.format(object=obj)
    if place is None:
        raise ValueError("a PLACE instruction needs a place to name")
    place_nouns = (HELD_OUT_PLACE_NOUNS if split in _NEW_NOUNS else TRAIN_PLACE_NOUNS)[place.shape]
    place_noun = _pick(rng, place_nouns)
    # The place's colour half of the time: "the bowl" as often as "the grey bowl".
    if rng.integers(2):
        place_noun = f"{place.colour} {place_noun}"
    return template.format(object=obj, place=place_noun, on=PLACE_PREPOSITIONS[place.shape])


_NEW_NOUNS = frozenset({Split.HELD_OUT, Split.NOUNS, Split.COLOURS_AND_NOUNS})
_NEW_COLOURS = frozenset({Split.COLOURS, Split.COLOURS_AND_NOUNS})
# How the DISTRACTOR split names an object that is not meant, after the one that is.
_DISTRACTOR_FORMS = (
    "{object}, not the {other}",
    "{object} and not the {other}",
    "{object} rather than the {other}",
    "{object} instead of the {other}",
)


# Splits whose commands name nothing here (`Split.ABSENT` ...): the robot must not move.
REFUSAL_SPLITS = frozenset({Split.ABSENT, Split.AMBIGUOUS, Split.NONSENSE})
# Commands that name no object: no colour, shape, place, stop or pick word in them. Training
# (demonstrations of refusing, `collect(..., refusals=k)`) and evaluation use different ones.
TRAINING_NONSENSE = (
    "sing me a song",
    "what time is it",
    "tell me a joke",
    "reach the flurble",
    "go to the zorp",
)
NONSENSE_COMMANDS = (
    "touch the glimmet",
    "how is the weather today",
    "do a little dance",
    "find the wibble",
    "good morning robot",
)


def describe_nothing(
    objects: Sequence[SceneObject],
    kind: TaskKind,
    rng: np.random.Generator,
    split: Split,
    place: SceneObject | None = None,
    colours: Sequence[str] = (),
    training: bool = False,
) -> str:
    """A command of a refusal split (`REFUSAL_SPLITS`) in training wording, naming nothing
    among `objects`. ABSENT combines a colour and a shape the scene shows (or one of `colours`)
    into an object it does not have; AMBIGUOUS names a colour or shape several objects share
    ("the cube", "the red one"), or "the object" where none is shared; NONSENSE is one of
    NONSENSE_COMMANDS (TRAINING_NONSENSE for `training` data)."""
    if split is Split.NONSENSE:
        return _pick(rng, TRAINING_NONSENSE if training else NONSENSE_COMMANDS)
    if split is Split.ABSENT:
        present = {(obj.colour, obj.shape) for obj in objects}
        shapes = sorted({obj.shape for obj in objects})
        for palette in (sorted({obj.colour for obj in objects}), sorted(set(colours))):
            absent = [(c, s) for c in palette for s in shapes if (c, s) not in present]
            if absent:
                colour, shape = absent[rng.integers(len(absent))]
                return describe(
                    objects[0],
                    kind,
                    rng,
                    place=place,
                    reference=(f"{colour} {_pick(rng, TRAIN_NOUNS[shape])}"),
                )
        raise ValueError("no absent object can be named: give the scene's palette (`colours`)")
    if split is not Split.AMBIGUOUS:
        raise ValueError(f"{split.value} is not a refusal split")
    shared = [
        _pick(rng, TRAIN_NOUNS[shape])
        for shape, n in Counter(obj.shape for obj in objects).items()
        if n > 1
    ] + [f"{colour} one" for colour, n in Counter(obj.colour for obj in objects).items() if n > 1]
    reference = _pick(rng, shared) if shared else _pick(rng, ("object", "thing"))
    return describe(objects[0], kind, rng, place=place, reference=reference)


def _object_phrase(
    target: SceneObject, rng: np.random.Generator, split: Split, others: Sequence[SceneObject]
) -> str:
    noun = _pick(rng, (HELD_OUT_NOUNS if split in _NEW_NOUNS else TRAIN_NOUNS)[target.shape])
    colour = _pick(rng, HELD_OUT_COLOURS[target.colour]) if split in _NEW_COLOURS else target.colour
    if split is Split.ATTRIBUTE:
        forms = []
        if all(other.shape != target.shape for other in others):
            forms.append(noun)
        if all(other.colour != target.colour for other in others):
            forms.append(f"{colour} one")
        if forms:
            return _pick(rng, forms)
    if split is Split.DISTRACTOR and others:
        other = others[rng.integers(len(others))]
        other_phrase = f"{other.colour} {_pick(rng, TRAIN_NOUNS[other.shape])}"
        return _pick(rng, _DISTRACTOR_FORMS).format(object=f"{colour} {noun}", other=other_phrase)
    return f"{colour} {noun}"


def _pick(rng: np.random.Generator, choices: Sequence[str]) -> str:
    return choices[rng.integers(len(choices))]


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
    place: str | None = None  # where the target goes (PLACE tasks)
    kind: str = ""  # the TaskKind's value, once a task is given
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
    """The status of one task over time: running until success, or a timeout.

    Success: within `success_distance` of the target, or, where the world judges the goal itself
    (picked up, put down), the goal met without a break for the kind's HOLD_SECONDS. PICK and
    PLACE tasks get EXTRA_TIME on top of `timeout`. The outcome is kept once reached (a task that
    succeeded stays succeeded, with its time, even if the robot moves on) until a new task starts.
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
        self._met_since: float | None = None

    @property
    def status(self) -> TaskStatus:
        return self._status

    def start(self, task: Task, now: float) -> TaskStatus:
        self.task = task
        self._met_since = None
        if task.target is None:
            self._status = TaskStatus(
                TaskState.UNKNOWN_TARGET,
                task.instruction,
                kind=task.kind.value,
                started_at=now,
                message=task.reason,
            )
        else:
            place = task.place.name if task.place is not None else None
            self._status = TaskStatus(
                TaskState.RUNNING,
                task.instruction,
                task.target.name,
                place,
                task.kind.value,
                now,
                message=f"{task.instruction!r}: going for the {task.target.name}"
                + (f", to the {place}" if place else ""),
            )
        return self._status

    def clear(self) -> None:
        """Forget the task (a new episode starts with none)."""
        self.task = None
        self._met_since = None
        self._status = TaskStatus(TaskState.IDLE, message="no task given")

    def time_limit(self, kind: TaskKind) -> float:
        """Seconds a task of this kind may take."""
        return self.timeout + EXTRA_TIME.get(kind, 0.0)

    def update(
        self, now: float, distance: float | None, goal_met: bool | None = None
    ) -> TaskStatus:
        """Advance with the robot's current distance to the target (None when there is none) and,
        for goals the world judges itself, whether the goal is met now (None: judge by distance)."""
        status, task = self._status, self.task
        if status.state is not TaskState.RUNNING or distance is None or task is None:
            return status
        started = status.started_at if status.started_at is not None else now
        met = distance <= self.success_distance if goal_met is None else goal_met
        if not met:
            self._met_since = None
        elif self._met_since is None:
            self._met_since = now
        done = _DONE[task.kind]
        limit = self.time_limit(task.kind)
        if met and now - self._met_since >= HOLD_SECONDS.get(task.kind, 0.0):
            where = (
                f" {PLACE_PREPOSITIONS[task.place.shape]} the {status.place}" if task.place else ""
            )
            state, message = TaskState.SUCCEEDED, f"{done} the {status.target}{where}"
        elif now - started >= limit:
            state, message = TaskState.TIMED_OUT, f"not {done} within {limit:g} s"
        else:
            self._status = replace(status, distance=distance)
            return self._status
        self._status = replace(
            status, state=state, finished_at=now, distance=distance, message=message
        )
        return self._status
