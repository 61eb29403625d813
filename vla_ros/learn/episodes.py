"""An episode's seed and instruction, shared by data collection and evaluation."""

from __future__ import annotations

import numpy as np

from vla_ros.sim.tasks import Split, describe
from vla_ros.sim.world import SimWorld


def episode_seed(base_seed: int, index: int) -> int:
    """The seed of episode `index` of a run seeded with `base_seed`.

    Runs with different base seeds draw unrelated episodes (not shifted copies of each other), so
    a collection seeded 0 and an evaluation seeded 1 share no placements.
    """
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])


def sample_instruction(
    world: SimWorld, seed: int, split: Split = Split.TRAIN, shift: int = 0
) -> str:
    """A random target of the world's scene, described with the training or held-out words.

    `shift` names the object that many places after the drawn one, in the same sentence: shifts
    0..k-1 on one placement name k different objects on the same picture.
    """
    rng = np.random.default_rng([seed, 1])  # apart from the stream that placed the objects
    objects = world.objects
    target = objects[(rng.integers(len(objects)) + shift) % len(objects)]
    return describe(target, world.spec.task_kind, rng, split)
