"""An episode's seed and instruction, shared by data collection and evaluation."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vla_ros.sim.tasks import (
    SPATIAL_WORDS,
    SceneObject,
    Split,
    TaskKind,
    describe,
    pick_by_place,
)
from vla_ros.sim.world import SimWorld


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
    target: SceneObject  # the object the instruction means
    place: SceneObject | None  # where it goes (PLACE)


def sample_task(
    world: SimWorld,
    seed: int,
    split: Split = Split.TRAIN,
    shift: int = 0,
    kind: TaskKind | None = None,
) -> SampledTask:
    """`sample_instruction`, with the object (and place) the instruction means."""
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
    reference = None
    if split is Split.SPATIAL:
        # The target is the object a word of place picks ("the nearest one"); a word that picks
        # none here (an object out of view for "leftmost") gives way to the next.
        where = world.whereabouts()
        for word in rng.permutation(sorted(SPATIAL_WORDS)):
            picked = pick_by_place(objects, str(word), where)
            if picked is not None:
                target, reference = picked, f"{word} one"
                break
    others = [obj for obj in objects if obj != target]
    instruction = describe(target, kind, rng, split, place, others, reference)
    return SampledTask(instruction, target, place)
