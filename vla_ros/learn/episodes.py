"""An episode's seed and instruction, shared by data collection and evaluation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from vla_ros.sim.scenes import SceneSpec
from vla_ros.sim.tasks import (
    REFUSAL_SPLITS,
    SPATIAL_WORDS,
    TRAIN_NOUNS,
    TRAIN_SPATIAL_WORDS,
    SceneObject,
    Split,
    TaskKind,
    Whereabouts,
    describe,
    describe_nothing,
    pick_by_place,
)
from vla_ros.sim.world import SimWorld


def task_kinds(spec: SceneSpec, tasks: Sequence[TaskKind]) -> tuple[TaskKind, ...]:
    """The kinds of task to ask in turn, one per placement: `tasks`, or the scene's own task.

    Raises ValueError for a kind the scene cannot do (picking without a gripper)."""
    kinds = tuple(tasks) or (spec.task_kind,)
    unknown = [kind.value for kind in kinds if kind not in spec.task_kinds]
    if unknown:
        raise ValueError(f"scene {spec.name!r} has no {', '.join(unknown)} task")
    return kinds


def episode_seed(base_seed: int, index: int) -> int:
    """The seed of episode `index` of a run seeded with `base_seed`.

    Runs with different base seeds draw unrelated episodes (not shifted copies of each other), so
    a collection seeded 0 and an evaluation seeded 1 share no placements.
    """
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])


def sample_instruction(
    world: SimWorld,
    seed: int,
    split: Split = Split.TRAIN,
    shift: int = 0,
    kind: TaskKind | None = None,
) -> str:
    """A random task of the world's scene, written as `split` says (`Split`).

    `kind`: what to ask for (default: the scene's own task, reaching or going to); to put an
    object down, a random place of the scene is named too. `shift` names the object that many
    places after the drawn one, in the same sentence: shifts 0..k-1 on one placement name k
    different objects on the same picture.
    """
    return sample_task(world, seed, split, shift, kind).instruction


class SampledTask(NamedTuple):
    instruction: str
    target: SceneObject | None  # the object the instruction means (None: REFUSAL_SPLITS)
    place: SceneObject | None  # where it goes (PLACE)


def sample_task(
    world: SimWorld,
    seed: int,
    split: Split = Split.TRAIN,
    shift: int = 0,
    kind: TaskKind | None = None,
    training: bool = False,
) -> SampledTask:
    """`sample_instruction`, with the object (and place) the instruction means. `training`: in
    the wording demonstrations use, not evaluation's (a refusal split's nonsense from
    TRAINING_NONSENSE, SPATIAL's words of place from TRAIN_SPATIAL_WORDS)."""
    kind = world.spec.task_kind if kind is None else kind
    if kind not in world.spec.task_kinds:
        known = ", ".join(k.value for k in world.spec.task_kinds)
        raise ValueError(f"scene {world.spec.name!r} has no {kind.value} task (it has: {known})")
    rng = np.random.default_rng([seed, 1])  # apart from the stream that placed the objects
    objects = world.objects
    target = objects[(rng.integers(len(objects)) + shift) % len(objects)]
    place = None
    if kind is TaskKind.PLACE:
        place = world.places[rng.integers(len(world.places))]
    if split in REFUSAL_SPLITS:
        palette = () if world.spec.objects is None else tuple(world.spec.objects.colours)
        instruction = describe_nothing(objects, kind, rng, split, place, palette, training)
        return SampledTask(instruction, None, place)
    reference = None
    if split is Split.COMBINATIONS:
        target = _unseen_combination(world)
    elif split is Split.SPATIAL:
        words = TRAIN_SPATIAL_WORDS if training else tuple(SPATIAL_WORDS)
        placed = _by_place(objects, world.whereabouts(), rng, words, shift)
        if placed is not None:
            target, reference = placed
    others = [obj for obj in objects if obj != target]
    instruction = describe(target, kind, rng, split, place, others, reference)
    return SampledTask(instruction, target, place)


def _unseen_combination(world: SimWorld) -> SceneObject:
    object_set = world.spec.objects
    unseen = [
        obj
        for obj in world.objects
        if object_set is not None and (obj.colour, obj.shape) in object_set.held_out
    ]
    if not unseen:
        raise ValueError(
            "the combinations split needs a compositional scene showing a combination held out "
            "of training (`compositional(scene)`, world.unseen_combinations = True)"
        )
    return unseen[0]


def _by_place(
    objects: Sequence[SceneObject],
    where: Mapping[str, Whereabouts],
    rng: np.random.Generator,
    words: Sequence[str],
    shift: int = 0,
) -> tuple[SceneObject, str] | None:
    """An object named by one of `words` of place: between objects of one shape where the scene
    has two or more ("the left cube"), else among all ("the nearest one"); a word that picks none
    here (an object out of view for "leftmost") gives way to the next. `shift` starts that many
    words further along, so shifts on one placement ask "the left cube", "the right cube" ..."""
    shapes = [shape for shape, n in Counter(obj.shape for obj in objects).items() if n > 1]
    if shapes:
        shape = shapes[rng.integers(len(shapes))]
        group = [obj for obj in objects if obj.shape == shape]
        noun = TRAIN_NOUNS[shape][0]
    else:
        group, noun = list(objects), "one"
    for word in np.roll(rng.permutation(sorted(words)), -shift):
        picked = pick_by_place(group, str(word), where)
        if picked is not None:
            return picked, f"{word} {noun}"
    return None
