"""Demonstrations: the scripted expert solving seeded episodes, written as a dataset.

Each step stores what the fusion node would hand a policy (the camera picture resized with
`resize_rgb` to the policy's input size, the scene's joint positions and velocities) and the
expert's action for that state.

Robustness (DART, Laskey et al. 2017): the command actually executed is the expert's plus
Gaussian noise (`action_noise` x each channel's limit), while the stored label stays the clean
expert action. The demonstrations then visit the slightly-off states a learned policy drifts
into, each labelled with the way back, at no extra cost (DAgger would need the policy in the
loop). After success the episode goes on for `hold_steps` steps with the expert at rest, so a
policy also learns to stop at the target.

Balanced targets (`targets_per_placement` k > 1): every placement is demonstrated k times, each
time naming another object. The first pictures of those episodes are identical and only the
command tells their actions apart, so a policy cannot fit them without reading its command.

Task kinds (`tasks`): on a scene with a gripper, episodes can ask to pick objects up or put them
down instead of reaching for them; placement p is demonstrated with kind p mod len(tasks), so a
dataset mixes them evenly and every target of a placement gets the same kind.

    python -m vla_ros.learn.collect --scene mobile --episodes 200 --out data/mobile
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_ros.learn.dataset import DatasetMeta, DatasetWriter, Episode
from vla_ros.learn.episodes import episode_seed, sample_task, task_kinds
from vla_ros.learn.progress import Progress
from vla_ros.logic.images import resize_rgb
from vla_ros.sim.experts import expert_action
from vla_ros.sim.scenes import SceneSpec
from vla_ros.sim.tasks import Split, TaskKind, TaskState
from vla_ros.sim.world import DEFAULT_CAMERA_SIZE, SimWorld

DEFAULT_IMAGE_SIZE = (64, 64)  # (height, width): the camera node's default model input
DEFAULT_ACTION_NOISE = 0.1  # fraction of each channel's limit (standard deviation)
DEFAULT_HOLD_STEPS = 5
REFUSAL_DEMO_STEPS = 10  # a refused command: the expert stays still for 1 s at 10 Hz
# What refusal demonstrations ask, in turn.
_REFUSALS = (Split.ABSENT, Split.AMBIGUOUS, Split.NONSENSE)


@dataclass(frozen=True)
class CollectionSummary:
    out_dir: Path
    episodes: int
    successes: int
    steps: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.episodes} episodes ({self.successes} solved), {self.steps} steps in "
            f"{self.seconds:.0f} s ({self.steps / max(self.seconds, 1e-9):.0f} steps/s) "
            f"-> {self.out_dir}"
        )


def collect(
    scene: str | SceneSpec,
    out_dir: str | Path,
    episodes: int,
    seed: int = 0,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    camera_size: tuple[int, int] = DEFAULT_CAMERA_SIZE,
    split: Split | Sequence[Split] = Split.TRAIN,
    action_noise: float = DEFAULT_ACTION_NOISE,
    hold_steps: int = DEFAULT_HOLD_STEPS,
    targets_per_placement: int = 1,
    progress: bool = True,
    tasks: Sequence[TaskKind] = (),
    refusals: int = 0,
    max_steps: int | None = None,
) -> CollectionSummary:
    """Roll out the expert for `episodes` seeded episodes of `scene` into a dataset at `out_dir`.

    Pictures are rendered at `camera_size` (the sim node's camera) and resized to `image_size`,
    as the camera node does. Adding episodes to an existing dataset of the same kind is fine;
    use another `seed` so they differ from the ones already there. Episode i shows placement
    i // n (n = `targets_per_placement` + `refusals`), naming its (i % n)-th object; `tasks`:
    the kinds of task to demonstrate, one per placement in turn (default: the scene's own).
    The last `refusals` episodes of a placement give a command that names nothing there (an
    absent object, an ambiguous one, nonsense: REFUSAL_SPLITS in turn) and show the expert
    staying still for REFUSAL_DEMO_STEPS, labelled `names_target=False`. `max_steps`: keep only
    each demonstration's first steps (recorded as not solved): many placements' first moves,
    where a policy chooses which object to head for, at a fraction of the cost of whole episodes.
    `split`: how the commands name their object, in training wording (`sample_task(...,
    training=True)`); several take turns by placement (after `tasks`), e.g. (TRAIN, ATTRIBUTE,
    SPATIAL) mixes "the red cube", "the ball" where it is the only one and "the left cube".
    """
    splits = (split,) if isinstance(split, Split) else tuple(split)
    if not splits:
        raise ValueError("split: give at least one")
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if targets_per_placement < 1:
        raise ValueError(f"targets_per_placement must be >= 1, got {targets_per_placement}")
    if not 0 <= action_noise <= 1:
        raise ValueError(f"action_noise is a fraction of the limits in [0, 1], got {action_noise}")
    if hold_steps < 0:
        raise ValueError(f"hold_steps must be >= 0, got {hold_steps}")
    if refusals < 0:
        raise ValueError(f"refusals must be >= 0, got {refusals}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {max_steps}")
    started = time.monotonic()
    with SimWorld(scene, camera_size=camera_size) as world:
        name = world.spec.name
        kinds = task_kinds(world.spec, tasks)
        world.unseen_combinations = Split.COMBINATIONS in splits
        writer = DatasetWriter(out_dir, dataset_meta(world, image_size))
        meter = Progress(f"collect {name}", episodes, enabled=progress)
        successes = steps = 0
        for index in range(episodes):
            placement, shift = divmod(index, targets_per_placement + refusals)
            episode_id = episode_seed(seed, placement)
            kind = kinds[placement % len(kinds)]
            if shift < targets_per_placement:
                # every kind of task meets every split, however many of each there are
                wording = splits[(placement // len(kinds)) % len(splits)]
            else:
                wording = _REFUSALS[(placement + shift) % len(_REFUSALS)]
            world.reset(episode_id)  # what the episode shows decides what can be asked
            instruction = sample_task(
                world, episode_id, wording, shift, kind, training=True
            ).instruction
            episode = _demonstrate(
                world,
                episode_id,
                shift,
                instruction,
                image_size,
                action_noise,
                hold_steps,
                max_steps,
            )
            writer.write(episode)
            successes += episode.success
            steps += len(episode)
            meter.update(index + 1, f"{successes} solved, {steps} steps")
    return CollectionSummary(Path(out_dir), episodes, successes, steps, time.monotonic() - started)


def dataset_meta(world: SimWorld, image_size: tuple[int, int]) -> DatasetMeta:
    """What a dataset of `world`'s scene at `image_size` records."""
    spec = world.spec
    return DatasetMeta(
        scene=spec.name,
        joint_names=spec.joint_names,
        action_names=spec.action_names,
        image_size=tuple(image_size),
        control_dt=spec.control_period,
    )


def _demonstrate(
    world: SimWorld,
    seed: int,
    shift: int,
    instruction: str,
    image_size: tuple[int, int],
    action_noise: float,
    hold_steps: int,
    max_steps: int | None = None,
) -> Episode:
    world.reset(seed)
    status = world.set_instruction(instruction)
    # Each target of a placement gets its own noise; the first keeps the stream it always had.
    noise = np.random.default_rng([seed, 2, shift] if shift else [seed, 2])
    noise_scale = action_noise * np.asarray(world.spec.action_limits)
    images, positions, velocities, actions, targets = [], [], [], [], []
    held = 0
    refusal = status.state is TaskState.UNKNOWN_TARGET
    while (max_steps is None or len(actions) < max_steps) and (
        status.state is TaskState.RUNNING
        or (status.state is TaskState.SUCCEEDED and held < hold_steps)
        or (refusal and len(actions) < REFUSAL_DEMO_STEPS)
    ):
        joints = world.joint_state()
        images.append(resize_rgb(world.render(), image_size))
        positions.append(joints.positions)
        velocities.append(joints.velocities)
        targets.append(target_in_picture(world))
        label = expert_action(world)
        actions.append(label)
        running = status.state is TaskState.RUNNING
        world.apply_command(label + noise.normal(0.0, noise_scale) if running or refusal else label)
        status = world.step()
        held += not running
    world.stop()
    return Episode(
        instruction=instruction,
        images=np.stack(images),
        joint_positions=np.array(positions, dtype=np.float32),
        joint_velocities=np.array(velocities, dtype=np.float32),
        actions=np.array(actions, dtype=np.float32),
        success=refusal or status.state is TaskState.SUCCEEDED,  # a refusal is its success
        names_target=not refusal,
        target_pixels=np.array(targets, dtype=np.float32),
    )


def target_in_picture(world: SimWorld) -> tuple[float, float]:
    """Where the task's target is in the camera picture: (x, y) in [-1, 1] from the top-left
    corner (the same after any resize), or NaN where it is out of view or there is no target."""
    task = world.tracker.task
    pixel = (
        None
        if task is None or task.target is None
        else world.camera_pixel(world.target_point(task.target))
    )
    height, width = world.camera_size
    if pixel is None or not (0 <= pixel[0] <= height and 0 <= pixel[1] <= width):
        return (math.nan, math.nan)
    return (2.0 * pixel[1] / width - 1.0, 2.0 * pixel[0] / height - 1.0)
