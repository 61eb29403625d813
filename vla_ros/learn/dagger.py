"""Interactive imitation (DAgger, Ross et al. 2011): the learner drives, the expert labels.

A behaviour-cloned policy has only seen the expert's states. Once its own errors take it
elsewhere (heading for the wrong object, drifting past the target) it has never been shown the
way back, and what it learnt from the demonstrations can mislead it there: mid-reach, the joint
angles alone tell which way the expert was going, so a cloned arm keeps going the way it started.
Here the learner drives seeded episodes as it is deployed (`evaluate.run_episode` with the
scene's `Deployment`: through the safety layer, at the graph's rate and latency), and every state
it visits is stored with the action the scripted expert would take there. Training on the
demonstrations plus these corrections, and repeating, teaches the policy the states it reaches.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vla_ros.learn.collect import (
    DEFAULT_IMAGE_SIZE,
    CollectionSummary,
    dataset_meta,
    target_in_picture,
)
from vla_ros.learn.dataset import DatasetWriter, Episode
from vla_ros.learn.episodes import episode_seed, sample_instruction, task_kinds
from vla_ros.learn.evaluate import Deployment, PolicyController, run_episode
from vla_ros.learn.progress import Progress
from vla_ros.model.policy import Policy
from vla_ros.sim.experts import expert_action
from vla_ros.sim.scenes import SceneSpec, scene_spec
from vla_ros.sim.tasks import TaskKind
from vla_ros.sim.world import DEFAULT_CAMERA_SIZE, SimWorld

# Simulated seconds a learner's episode may last: the experts reach within 1.5 s, and a learner
# still far off after 3 s would only add more of the same correction. Picking and placing get
# the task's EXTRA_TIME on top (8 s and 18 s: the experts take about 4.5 and 7).
DEFAULT_ROLLOUT_TIMEOUT = 3.0


class _Relabeller:
    """A controller that drives with the learner and records each state with the expert's action."""

    def __init__(self, learner: PolicyController) -> None:
        self.learner = learner
        self.steps: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple]] = []

    def reset(self) -> None:
        self.learner.reset()
        self.steps = []

    def act(self, world: SimWorld) -> np.ndarray:
        joints = world.joint_state()
        label = expert_action(world)  # before the learner's command moves anything
        command = self.learner.act(world)
        observation = self.learner.last_observation
        assert observation is not None
        target = target_in_picture(world)
        self.steps.append((observation.image, joints.positions, joints.velocities, label, target))
        return command

    @property
    def last_uncertainty(self) -> float:
        return self.learner.last_uncertainty

    def episode(self, instruction: str, success: bool) -> Episode:
        images, positions, velocities, labels, targets = zip(*self.steps, strict=True)
        return Episode(
            instruction=instruction,
            images=np.stack(images),
            joint_positions=np.array(positions, dtype=np.float32),
            joint_velocities=np.array(velocities, dtype=np.float32),
            actions=np.array(labels, dtype=np.float32),
            success=success,
            target_pixels=np.array(targets, dtype=np.float32),
        )


def relabel(
    scene: str | SceneSpec,
    out_dir: str | Path,
    policy: Policy,
    episodes: int,
    seed: int,
    targets_per_placement: int = 1,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    camera_size: tuple[int, int] = DEFAULT_CAMERA_SIZE,
    deployment: Deployment | None = None,
    timeout: float = DEFAULT_ROLLOUT_TIMEOUT,
    progress: bool = True,
    tasks: Sequence[TaskKind] = (),
) -> CollectionSummary:
    """Let `policy` drive `episodes` seeded episodes of `scene`; add every state it visits,
    labelled with the expert's action, to the dataset at `out_dir` (created if missing).

    `deployment`: how the learner is deployed (default: `Deployment.for_scene(scene)`). Use a
    `seed` no other collection into the same dataset, and no evaluation, uses. `tasks`: what
    the episodes ask, one kind per placement in turn as `collect` does (default: the scene's
    own task).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    spec = scene_spec(scene)
    kinds = task_kinds(spec, tasks)
    deployment = deployment if deployment is not None else Deployment.for_scene(spec.name)
    started = time.monotonic()
    successes = steps = 0
    with SimWorld(spec, camera_size=camera_size, episode_timeout=timeout) as world:
        writer = DatasetWriter(out_dir, dataset_meta(world, image_size))
        recorder = _Relabeller(PolicyController(policy, world, image_size))
        meter = Progress(f"relabel {spec.name}", episodes, enabled=progress)
        for index in range(episodes):
            placement, shift = divmod(index, targets_per_placement)
            episode_id = episode_seed(seed, placement)
            world.reset(episode_id)  # what the episode shows decides what can be asked
            kind = kinds[placement % len(kinds)]
            instruction = sample_instruction(world, episode_id, shift=shift, kind=kind)
            result = run_episode(world, recorder, episode_id, instruction, deployment)
            if recorder.steps:
                writer.write(recorder.episode(instruction, result.success))
            successes += result.success
            steps += len(recorder.steps)
            meter.update(index + 1, f"learner solved {successes}, {steps} steps")
    return CollectionSummary(Path(out_dir), episodes, successes, steps, time.monotonic() - started)
