"""Closed-loop evaluation: run a controller (the scripted expert or any Policy) on seeded episodes.

A policy is driven exactly as the fusion node drives it: the camera picture resized with
`resize_rgb` to the policy's input size, the instruction, the joints in `policy.joint_names`
order; its action, mapped by `policy.action_names`, is the command for one control period.

    python -m vla_ros.learn.evaluate --scene mobile --episodes 50     # the expert's success rate
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vla_ros.learn.episodes import episode_seed, sample_instruction
from vla_ros.learn.progress import Progress
from vla_ros.logic.commands import parse_command
from vla_ros.logic.images import resize_rgb
from vla_ros.model.policy import Observation, Policy
from vla_ros.sim.experts import expert_action
from vla_ros.sim.tasks import Split, TaskState
from vla_ros.sim.world import DEFAULT_CAMERA_SIZE, SimWorld

DEFAULT_IMAGE_SIZE = (64, 64)  # (height, width): the camera node's default model input
DEFAULT_EVAL_SEED = 1  # collection defaults to 0: evaluation sees placements never trained on


class Controller(Protocol):
    """Anything that commands a world: the expert, a policy, a test's scripted stand-in."""

    def reset(self) -> None: ...

    def act(self, world: SimWorld) -> np.ndarray:
        """The command for the next control period, in the scene's `action_names` order."""


class ExpertController:
    """The scripted expert: ground truth, the upper bound for every policy."""

    def reset(self) -> None:
        pass

    def act(self, world: SimWorld) -> np.ndarray:
        return expert_action(world)


class PolicyController:
    """A Policy driven through its contract, with the camera picture at its input size."""

    def __init__(
        self,
        policy: Policy,
        world: SimWorld,
        image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    ) -> None:
        scene_channels = world.spec.action_names
        unknown = [name for name in policy.action_names if name not in scene_channels]
        if unknown:
            raise ValueError(
                f"the policy commands {unknown}, which scene {world.spec.name!r} does not have "
                f"(its channels: {', '.join(scene_channels)})"
            )
        missing_joints = [name for name in policy.joint_names if name not in world.joint_names]
        if missing_joints:
            raise ValueError(f"scene {world.spec.name!r} has no joints {missing_joints}")
        self.policy = policy
        self.image_size = image_size
        self._channels = [scene_channels.index(name) for name in policy.action_names]
        self._uncertainties: list[float] = []

    def reset(self) -> None:
        self.policy.reset()
        self._uncertainties.clear()

    def act(self, world: SimWorld) -> np.ndarray:
        joints = tuple(self.policy.joint_names)
        observation = Observation(
            image=resize_rgb(world.render(), self.image_size),
            # Normalised as the voice command node hands it to the fusion node.
            instruction=parse_command(world.task_status().instruction).text,
            joint_positions=world.joint_positions(joints).astype(np.float32),
            joint_velocities=world.joint_velocities(joints).astype(np.float32),
        )
        proposal = self.policy.select_action(observation)
        self._uncertainties.append(float(proposal.uncertainty))
        command = np.zeros(len(world.spec.action_names))
        command[self._channels] = np.asarray(proposal.action, dtype=float)
        # A NaN from a model is never sent to a robot (the safety node does the same).
        return command if np.all(np.isfinite(command)) else np.zeros_like(command)

    @property
    def mean_uncertainty(self) -> float | None:
        return float(np.mean(self._uncertainties)) if self._uncertainties else None


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    instruction: str
    target: str | None
    state: TaskState
    steps: int
    duration: float  # simulated seconds until the task ended
    final_distance: float | None
    mean_uncertainty: float | None = None  # a policy's, over the episode's steps

    @property
    def success(self) -> bool:
        return self.state is TaskState.SUCCEEDED


@dataclass(frozen=True)
class Evaluation:
    scene: str
    split: Split
    episodes: tuple[EpisodeResult, ...]

    @property
    def success_rate(self) -> float:
        return sum(e.success for e in self.episodes) / len(self.episodes) if self.episodes else 0.0

    def summary(self) -> str:
        times = [e.duration for e in self.episodes if e.success]
        mean_time = f"{np.mean(times):.1f} s" if times else "-"
        return (
            f"{self.scene} ({self.split.value} phrasings): {self.success_rate:.0%} success over "
            f"{len(self.episodes)} episodes, mean time to success {mean_time}"
        )


def run_episode(
    world: SimWorld, controller: Controller, seed: int, instruction: str
) -> EpisodeResult:
    """One episode from `seed`: until the task succeeds, times out or names no object."""
    world.reset(seed)
    controller.reset()
    status = world.set_instruction(instruction)
    steps = 0
    while status.state is TaskState.RUNNING:
        world.apply_command(controller.act(world))
        status = world.step()
        steps += 1
    world.stop()
    return EpisodeResult(
        seed=seed,
        instruction=instruction,
        target=status.target,
        state=status.state,
        steps=steps,
        duration=(status.finished_at or world.time) - (status.started_at or 0.0),
        final_distance=status.distance,
        mean_uncertainty=getattr(controller, "mean_uncertainty", None),
    )


def evaluate(
    scene: str,
    episodes: int,
    controller: Controller | Policy | None = None,
    seed: int = DEFAULT_EVAL_SEED,
    split: Split = Split.TRAIN,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    camera_size: tuple[int, int] = DEFAULT_CAMERA_SIZE,
    world: SimWorld | None = None,
    progress: bool = True,
) -> Evaluation:
    """Success of `controller` over `episodes` seeded episodes of `scene`.

    `controller` is the expert when None; a Policy is driven through its contract with pictures
    of `image_size`. Pass `world` to reuse one; otherwise one is made for the run and closed
    after it.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if world is not None and world.spec.name != scene:
        raise ValueError(f"the world runs scene {world.spec.name!r}, not {scene!r}")
    own_world = world is None
    world = world if world is not None else SimWorld(scene, camera_size=camera_size)
    meter = Progress(f"evaluate {scene}", episodes, enabled=progress)
    results: list[EpisodeResult] = []
    try:
        if controller is None:
            controller = ExpertController()
        elif isinstance(controller, Policy):
            controller = PolicyController(controller, world, image_size)
        for index in range(episodes):
            episode = episode_seed(seed, index)
            instruction = sample_instruction(world, episode, split)
            results.append(run_episode(world, controller, episode, instruction))
            successes = sum(r.success for r in results)
            meter.update(index + 1, f"success {successes}/{len(results)}")
    finally:
        if own_world:
            world.close()
    return Evaluation(scene, split, tuple(results))
