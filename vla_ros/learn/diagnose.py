"""Does a policy listen to its command? Where it heads in the first second, three ways.

For each seeded episode the same first picture is driven three times:
- `named`: with the episode's own command;
- `swapped`: with the same sentence naming another object of the scene;
- `zeroed`: with the episode's command but every language feature the network reads set to zero
  (a `VLAPolicy` only).
After `horizon` seconds the object the robot got closest to, relative to where it started (the
largest drop in the task's own distance), is the one it headed for. A policy that follows its
command heads for the named object in `named` and for the newly named one in `swapped`; a policy
that ignores it heads for the same object in all three, so its `swapped` rate falls to what
`zeroed` gives. The first action's change when the command is swapped (as a fraction of the
command limits) says the same on a single picture.

The rollouts are bare (no safety layer, no latency): this asks what the network does with its
inputs; and zeroed language would read as a nonsense command and stop a governed robot.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from vla_ros.learn.episodes import episode_seed
from vla_ros.learn.evaluate import (
    DEFAULT_EVAL_SEED,
    Controller,
    ExpertController,
    PolicyController,
)
from vla_ros.learn.progress import Progress
from vla_ros.model.encoders import TextEmbedding, TextEncoder
from vla_ros.model.policy import Policy
from vla_ros.model.vla_policy import VLAPolicy
from vla_ros.sim.scenes import SceneSpec, scene_spec
from vla_ros.sim.tasks import SceneObject, describe
from vla_ros.sim.world import DEFAULT_CAMERA_SIZE, SimWorld

DEFAULT_HORIZON = 1.0  # seconds: the arm's expert reaches in 0.9 s on average


class Condition(enum.Enum):
    NAMED = "named"
    SWAPPED = "swapped"
    ZEROED = "zeroed"


@dataclass(frozen=True)
class Rollout:
    named: str  # the object the command names
    original: str  # the object the episode's own command names
    headed_for: str  # where the robot went
    first_action: np.ndarray


@dataclass(frozen=True)
class CommandFollowing:
    scene: str
    horizon: float
    rollouts: dict[Condition, tuple[Rollout, ...]]
    first_action_change: float  # mean |a(swapped) - a(named)| / limits on the first picture

    @property
    def episodes(self) -> int:
        return len(self.rollouts[Condition.NAMED])

    def rate(self, condition: Condition, toward: str = "named") -> float | None:
        """How often the robot headed for the named (or the `original`) object."""
        runs = self.rollouts.get(condition, ())
        if not runs:
            return None
        return float(np.mean([r.headed_for == getattr(r, toward) for r in runs]))

    def to_dict(self) -> dict[str, object]:
        return {
            "scene": self.scene,
            "episodes": self.episodes,
            "horizon": self.horizon,
            "heads_for_named": {c.value: self.rate(c) for c in Condition},
            "heads_for_original": {c.value: self.rate(c, "original") for c in Condition},
            "first_action_change": self.first_action_change,
        }

    def summary(self) -> str:
        def percent(value: float | None) -> str:
            return "-" if value is None else f"{value:.0%}"

        named = self.rate(Condition.NAMED)
        swapped = self.rate(Condition.SWAPPED)
        stayed = self.rate(Condition.SWAPPED, "original")
        zeroed = self.rate(Condition.ZEROED)
        return (
            f"{self.scene}: heading in the first {self.horizon:g} s over {self.episodes} "
            f"pictures: for the named object {percent(named)}; command swapped to another "
            f"object: for the new one {percent(swapped)} (still for the old one "
            f"{percent(stayed)}); language zeroed: for the original one {percent(zeroed)}; "
            f"first action moved by {self.first_action_change:.2f} of the limits on a swap"
        )


def command_following(
    scene: str | SceneSpec,
    episodes: int,
    policy: Policy | None = None,
    seed: int = DEFAULT_EVAL_SEED,
    horizon: float = DEFAULT_HORIZON,
    image_size: tuple[int, int] | None = None,
    camera_size: tuple[int, int] = DEFAULT_CAMERA_SIZE,
    progress: bool = True,
) -> CommandFollowing:
    """The three conditions on `episodes` seeded first pictures (the expert if `policy` is None)."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    rollouts: dict[Condition, list[Rollout]] = {c: [] for c in Condition}
    changes = []
    spec = scene_spec(scene)
    meter = Progress(f"command following {spec.name}", episodes, enabled=progress)
    with SimWorld(spec, camera_size=camera_size) as world:
        controller: Controller = (
            ExpertController() if policy is None else PolicyController(policy, world, image_size)
        )
        limits = np.asarray(world.spec.action_limits)
        for index in range(episodes):
            episode = episode_seed(seed, index)
            world.reset(episode)  # what the episode shows decides what can be asked
            original, other, sentences = _commands(world, episode)
            named = _rollout(world, controller, episode, sentences[0], original, original, horizon)
            swapped = _rollout(world, controller, episode, sentences[1], other, original, horizon)
            rollouts[Condition.NAMED].append(named)
            rollouts[Condition.SWAPPED].append(swapped)
            changes.append(np.linalg.norm((swapped.first_action - named.first_action) / limits))
            if isinstance(policy, VLAPolicy):
                with zeroed_language(policy):
                    rollouts[Condition.ZEROED].append(
                        _rollout(
                            world, controller, episode, sentences[0], original, original, horizon
                        )
                    )
            meter.update(index + 1)
    return CommandFollowing(
        spec.name,
        horizon,
        {c: tuple(runs) for c, runs in rollouts.items()},
        float(np.mean(changes)),
    )


def _commands(world: SimWorld, seed: int) -> tuple[SceneObject, SceneObject, tuple[str, str]]:
    """The episode's target (as `sample_instruction` draws it), another object, and one sentence
    for each written with the same template."""
    objects = world.objects
    choice = np.random.default_rng([seed, 1])
    original = objects[choice.integers(len(objects))]
    others = [obj for obj in objects if obj is not original]
    other = others[np.random.default_rng([seed, 3]).integers(len(others))]
    kind = world.spec.task_kind
    sentences = tuple(
        describe(obj, kind, np.random.default_rng([seed, 4])) for obj in (original, other)
    )
    return original, other, sentences


def _rollout(
    world: SimWorld,
    controller: Controller,
    seed: int,
    instruction: str,
    named: SceneObject,
    original: SceneObject,
    horizon: float,
) -> Rollout:
    world.reset(seed)
    controller.reset()
    world.set_instruction(instruction)
    start = {obj.name: world.distance_to(obj) for obj in world.objects}
    first = None
    for _ in range(max(1, round(horizon / world.spec.control_period))):
        action = controller.act(world)
        first = action if first is None else first
        world.apply_command(action if np.all(np.isfinite(action)) else np.zeros_like(action))
        world.step()
    world.stop()
    progress = {obj.name: start[obj.name] - world.distance_to(obj) for obj in world.objects}
    return Rollout(named.name, original.name, max(progress, key=progress.__getitem__), first)


class _SilentText:
    """Hands the network all-zero language features in the shapes the real encoder gives."""

    def __init__(self, text: TextEncoder) -> None:
        self.text = text

    def embed(self, instruction: str) -> TextEmbedding:
        real = self.text.embed(instruction)
        return TextEmbedding(
            torch.zeros_like(real.tokens), real.mask, torch.zeros_like(real.pooled)
        )


@contextmanager
def zeroed_language(policy: VLAPolicy) -> Iterator[None]:
    """Inside, `policy` reads zeros where the instruction's features would be."""
    text = policy.text
    policy.text = _SilentText(text)  # type: ignore[assignment]
    try:
        yield
    finally:
        policy.text = text
