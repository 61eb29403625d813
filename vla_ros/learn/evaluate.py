"""Closed-loop evaluation: run a controller (the scripted expert or any Policy) on seeded episodes.

A policy is driven exactly as the fusion node drives it: the camera picture resized with
`resize_rgb` to the policy's input size, the instruction, the joints in `policy.joint_names`
order; its action, mapped by `policy.action_names`, is the command for one control period.

As deployed (`Deployment.for_scene`, what `vla-ros eval` uses unless told `--no-safety`), every
proposal goes through the safety node's `SafetyGovernor` with the safety node's settings for the
scene (uncertainty scaling and stop, speed and acceleration limits), at the fusion node's rate,
and reaches the robot `latency` seconds after its picture was taken; the previous command stays
in force meanwhile, as it does on the robot.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vla_ros import graph
from vla_ros.learn.episodes import episode_seed, sample_instruction
from vla_ros.learn.progress import Progress
from vla_ros.logic.commands import parse_command
from vla_ros.logic.images import resize_rgb
from vla_ros.logic.safety import Ignored, Proposal, SafetyConfig, SafetyGovernor
from vla_ros.model.policy import Observation, Policy
from vla_ros.sim.experts import expert_action
from vla_ros.sim.scenes import SceneSpec, scene_spec
from vla_ros.sim.tasks import REFUSAL_SPLITS, Split, TaskKind, TaskState
from vla_ros.sim.world import DEFAULT_CAMERA_SIZE, SimWorld

DEFAULT_IMAGE_SIZE = (64, 64)  # (height, width): the camera node's default model input
DEFAULT_EVAL_SEED = 1  # collection defaults to 0: evaluation sees placements never trained on
# Seconds from a picture being taken to the command it leads to acting on the robot, in the
# embedded graph: the simulator's camera runs at 15 Hz and the fusion node at 10 Hz, so the
# picture a step uses is 0-67 ms old (33 ms on average); the fusion step takes 5.5-6.1 ms (p50,
# `make bench`), 9.7 ms (p50; p99 29 ms) in `vla-ros sim --scene arm` on a busy 2-core machine;
# each of the two DDS hops (proposal, command) about 1 ms.
DEFAULT_LATENCY = 0.05
# A command that names nothing here is refused when every command the robot gets from 1 s on is
# a stop (zero), until REFUSAL_HORIZON, and it reaches no object meanwhile.
REFUSAL_DEADLINE = 1.0  # seconds
REFUSAL_HORIZON = 3.0  # seconds


@dataclass(frozen=True)
class Deployment:
    """What stands between a controller and the robot: the safety layer, rate and delay."""

    safety: SafetyConfig | None  # None: the bare controller's command goes straight to the robot
    control_period: float  # seconds between proposals
    latency: float = 0.0  # seconds from the picture to the command taking effect

    def __post_init__(self) -> None:
        if not self.control_period > 0:
            raise ValueError(f"control_period must be > 0 s, got {self.control_period}")
        if not 0 <= self.latency < self.control_period:
            raise ValueError(
                f"latency must be in [0, control period {self.control_period:g} s), "
                f"got {self.latency:g}"
            )

    @classmethod
    def for_scene(
        cls, scene: str, latency: float = DEFAULT_LATENCY, safety: bool = True
    ) -> Deployment:
        """As `vla-ros sim` runs `scene`: the safety node's settings and the fusion node's rate
        from the scene's config files (the same ones the nodes read)."""
        rate = float(graph.scene_parameters(scene, "fusion_node")["rate_hz"])
        config = None
        if safety:
            config = SafetyConfig.from_values(graph.scene_parameters(scene, "safety_node"))
        return cls(config, 1.0 / rate, latency)

    def describe(self) -> str:
        safety = (
            f"through the safety layer (slow down above U {self.safety.uncertainty_slowdown:g}, "
            f"stop at {self.safety.uncertainty_stop:g})"
            if self.safety is not None
            else "bare (no safety layer)"
        )
        return f"{safety}, {1 / self.control_period:g} Hz, latency {self.latency * 1000:.0f} ms"


class Controller(Protocol):
    """Anything that commands a world: the expert, a policy, a test's scripted stand-in."""

    def reset(self) -> None: ...

    def act(self, world: SimWorld) -> np.ndarray:
        """The command for the next control period, in the scene's `action_names` order."""

    @property
    def last_uncertainty(self) -> float:
        """The uncertainty that came with the last command (what the safety layer reads)."""


class ExpertController:
    """The scripted expert: ground truth, the upper bound for every policy."""

    last_uncertainty = 0.0

    def reset(self) -> None:
        pass

    def act(self, world: SimWorld) -> np.ndarray:
        return expert_action(world)


class PolicyController:
    """A Policy driven through its contract, with the camera picture at `image_size` (default:
    the policy's input size, as a camera node set to it delivers; else the camera node's
    default)."""

    def __init__(
        self,
        policy: Policy,
        world: SimWorld,
        image_size: tuple[int, int] | None = None,
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
        self.image_size = image_size or policy.input_size or DEFAULT_IMAGE_SIZE
        self._channels = [scene_channels.index(name) for name in policy.action_names]
        self._uncertainties: list[float] = []
        self.inference_seconds: list[float] = []  # every select_action, over all episodes
        self.last_observation: Observation | None = None  # what the policy was last shown

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
        self.last_observation = observation
        started = time.perf_counter()
        proposal = self.policy.select_action(observation)
        self.inference_seconds.append(time.perf_counter() - started)
        self._uncertainties.append(float(proposal.uncertainty))
        command = np.zeros(len(world.spec.action_names))
        command[self._channels] = np.asarray(proposal.action, dtype=float)
        return command

    @property
    def last_uncertainty(self) -> float:
        return self._uncertainties[-1] if self._uncertainties else 0.0

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
    slowed: float = 0.0  # simulated seconds the safety layer scaled the command down
    stopped: float = 0.0  # ... and held the robot still
    # For a command that names nothing here (no target): whether the robot refused it, stopped
    # from REFUSAL_DEADLINE on and reaching nothing; None for a task with a target.
    refused: bool | None = None

    @property
    def success(self) -> bool:
        if self.refused is not None:
            return self.refused
        return self.state is TaskState.SUCCEEDED

    def to_dict(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "instruction": self.instruction,
            "target": self.target,
            "state": self.state.value,
            "steps": self.steps,
            "duration": round(self.duration, 3),
            "final_distance": _round(self.final_distance),
            "mean_uncertainty": _round(self.mean_uncertainty),
            "slowed": round(self.slowed, 3),
            "stopped": round(self.stopped, 3),
            "refused": self.refused,
        }


@dataclass(frozen=True)
class Evaluation:
    scene: str
    split: Split | None  # None: the commands were given (`vla-ros eval --commands-file`)
    episodes: tuple[EpisodeResult, ...]
    deployment: Deployment | None = None  # None: the bare controller at the scene's period
    inference_seconds: tuple[float, ...] = ()  # a policy's select_action times, on this machine
    compositional: bool = False  # objects drawn per episode (vla_ros.sim.objects)

    @property
    def success_rate(self) -> float:
        return _rate(self.episodes)

    def task_rates(self) -> dict[str, float]:
        """Success rate per target object (episodes naming no object count under "none")."""
        targets = sorted({e.target or "none" for e in self.episodes})
        return {t: _rate([e for e in self.episodes if (e.target or "none") == t]) for t in targets}

    def to_dict(self) -> dict[str, object]:
        """What `vla-ros eval --json` writes."""
        successes = [e for e in self.episodes if e.success]
        failures = [e for e in self.episodes if not e.success]
        counts = Counter(e.target or "none" for e in self.episodes)
        return {
            "scene": self.scene,
            "objects": "compositional" if self.compositional else "fixed",
            "split": None if self.split is None else self.split.value,
            "episodes": len(self.episodes),
            "success_rate": self.success_rate,
            "tasks": {
                task: {"episodes": counts[task], "success_rate": rate}
                for task, rate in self.task_rates().items()
            },
            "mean_time_to_success": _mean([e.duration for e in successes if e.refused is None]),
            "slowed_fraction": self._share("slowed"),
            "stopped_fraction": self._share("stopped"),
            "mean_uncertainty_successes": _mean([e.mean_uncertainty for e in successes]),
            "mean_uncertainty_failures": _mean([e.mean_uncertainty for e in failures]),
            "governed": self.deployment is not None and self.deployment.safety is not None,
            "control_period": None if self.deployment is None else self.deployment.control_period,
            "latency": None if self.deployment is None else self.deployment.latency,
            "inference_ms_p50": _percentile_ms(self.inference_seconds, 50),
            "inference_ms_p99": _percentile_ms(self.inference_seconds, 99),
            "episode_results": [e.to_dict() for e in self.episodes],
        }

    def summary(self) -> str:
        values = self.to_dict()
        mean_time = values["mean_time_to_success"]
        how = self.deployment.describe() if self.deployment is not None else "bare"
        wording = "given commands" if self.split is None else f"{self.split.value} phrasings"
        objects = ", compositional objects" if self.compositional else ""
        lines = [
            f"{self.scene} ({wording}{objects}, {how}): {self.success_rate:.0%} success "
            f"over {len(self.episodes)} episodes, mean time to success "
            + (f"{mean_time:.2f} s" if mean_time is not None else "-"),
            f"  time slowed {values['slowed_fraction']:.0%}, stopped "
            f"{values['stopped_fraction']:.0%} (of all episode time)",
            "  per task: "
            + ", ".join(f"{task} {rate:.0%}" for task, rate in self.task_rates().items()),
        ]
        if self.inference_seconds:
            lines.append(
                f"  policy inference here: p50 {values['inference_ms_p50']:.1f} ms, p99 "
                f"{values['inference_ms_p99']:.1f} ms (part of the latency above)"
            )
        good, bad = values["mean_uncertainty_successes"], values["mean_uncertainty_failures"]
        if good is not None or bad is not None:
            lines.append(f"  mean uncertainty: successes {_format(good)}, failures {_format(bad)}")
        return "\n".join(lines)

    def _share(self, field_name: str) -> float:
        total = sum(e.duration for e in self.episodes)
        part = sum(getattr(e, field_name) for e in self.episodes)
        return part / total if total > 0 else 0.0


def run_episode(
    world: SimWorld,
    controller: Controller,
    seed: int,
    instruction: str,
    deployment: Deployment | None = None,
) -> EpisodeResult:
    """One episode from `seed`: until the task succeeds or times out; a command that names no
    object here is watched for REFUSAL_HORIZON seconds: is it refused (`EpisodeResult.refused`)?

    Without a `deployment` the controller's command acts at once for one scene control period
    (a NaN becomes a zero command); with one, as `Deployment` says.
    """
    world.reset(seed)
    controller.reset()
    status = world.set_instruction(instruction)
    refusal = status.state is TaskState.UNKNOWN_TARGET
    period = world.spec.control_period if deployment is None else deployment.control_period
    latency = 0.0 if deployment is None else deployment.latency
    safety = None if deployment is None else deployment.safety
    # A fresh governor per episode: the simulated clock starts again at zero.
    governor = None if safety is None else SafetyGovernor(safety)
    names = world.spec.action_names
    steps = 0
    slowed = stopped = 0.0
    moved_late = reached = False
    refusal_steps = round(REFUSAL_HORIZON / period) if refusal else 0
    while status.state is TaskState.RUNNING or steps < refusal_steps:
        taken = world.time
        action = controller.act(world)
        if latency > 0:
            status = world.step(latency)  # the previous command acts while this one is computed
            if status.state not in (TaskState.RUNNING, TaskState.UNKNOWN_TARGET):
                break
        if governor is None:
            # A NaN from a model is never sent to a robot (the safety node stops instead).
            command = action if np.all(np.isfinite(action)) else np.zeros_like(action)
        else:
            proposal = Proposal(taken, names, action, controller.last_uncertainty)
            decision = governor.on_proposal(proposal, taken + latency)
            if isinstance(decision, Ignored):
                raise RuntimeError(f"the safety layer ignored a proposal: {decision.reason}")
            channels = governor.config.channels
            command = np.array([decision.velocities[channels.index(n)] for n in names])
            if decision.stopped:
                stopped += period
            elif decision.speed_scale < 1.0:
                slowed += period
        moved_late |= taken + latency >= REFUSAL_DEADLINE and bool(np.any(command != 0))
        world.apply_command(command)
        status = world.step(period - latency)
        if refusal:
            reached |= any(
                world.distance_to(obj) <= world.spec.success_distance for obj in world.objects
            )
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
        slowed=slowed,
        stopped=stopped,
        refused=not (moved_late or reached) if refusal else None,
    )


def evaluate(
    scene: str | SceneSpec,
    episodes: int,
    controller: Controller | Policy | None = None,
    seed: int = DEFAULT_EVAL_SEED,
    split: Split = Split.TRAIN,
    image_size: tuple[int, int] | None = None,
    camera_size: tuple[int, int] = DEFAULT_CAMERA_SIZE,
    world: SimWorld | None = None,
    progress: bool = True,
    deployment: Deployment | None = None,
    task: TaskKind | None = None,
    commands: Sequence[str] = (),
) -> Evaluation:
    """Success of `controller` over `episodes` seeded episodes of `scene`.

    `task`: what every episode asks for (default: the scene's own task, reaching or going to).
    `commands`: the instructions to give, in turn, instead of ones written as `split` says.
    `controller` is the expert when None; a Policy is driven through its contract with pictures
    of `image_size` (default: its own input size). `deployment`: as deployed
    (`Deployment.for_scene(scene)`), or None for the bare controller. Pass `world` to reuse one;
    otherwise one is made for the run and closed after it.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    spec = scene_spec(scene)
    if world is not None and world.spec != spec:
        raise ValueError(f"the world runs another scene than {spec.name!r}: {world.spec}")
    own_world = world is None
    world = world if world is not None else SimWorld(spec, camera_size=camera_size)
    # The combinations split shows, in every episode, one combination training never showed.
    world.unseen_combinations = split is Split.COMBINATIONS
    meter = Progress(f"evaluate {spec.name}", episodes, enabled=progress)
    results: list[EpisodeResult] = []
    try:
        if controller is None:
            controller = ExpertController()
        elif isinstance(controller, Policy):
            controller = PolicyController(controller, world, image_size)
        for index in range(episodes):
            episode = episode_seed(seed, index)
            if commands:
                instruction = commands[index % len(commands)]
            else:
                world.reset(episode)  # what the episode shows decides what can be asked
                instruction = sample_instruction(world, episode, split, kind=task)
            results.append(run_episode(world, controller, episode, instruction, deployment))
            successes = sum(r.success for r in results)
            meter.update(index + 1, f"success {successes}/{len(results)}")
    finally:
        if own_world:
            world.close()
    timings = tuple(getattr(controller, "inference_seconds", ()))
    return Evaluation(
        spec.name,
        None if commands else split,
        tuple(results),
        deployment,
        timings,
        spec.objects is not None,
    )


def _rate(episodes: Sequence[EpisodeResult]) -> float:
    return sum(e.success for e in episodes) / len(episodes) if episodes else 0.0


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _percentile_ms(seconds: Sequence[float], q: float) -> float | None:
    return float(np.percentile(seconds, q) * 1000) if seconds else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _format(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def language_report(
    scene: str | SceneSpec,
    episodes: int,
    controller: Controller | Policy | None = None,
    seed: int = DEFAULT_EVAL_SEED,
    deployment: Deployment | None = None,
    task: TaskKind | None = None,
    splits: Sequence[Split] | None = None,
    progress: bool = True,
) -> dict[Split, Evaluation]:
    """`evaluate` on every split (default: every one the scene has, `language_splits`): the
    same placements, written each split's way."""
    spec = scene_spec(scene)
    splits = language_splits(spec) if splits is None else splits
    with SimWorld(spec) as world:
        return {
            split: evaluate(
                spec,
                episodes,
                controller,
                seed=seed,
                split=split,
                world=world,
                progress=progress,
                deployment=deployment,
                task=task,
            )
            for split in splits
        }


def language_splits(scene: str | SceneSpec) -> tuple[Split, ...]:
    """The splits a scene can be evaluated on: unseen combinations need compositional objects."""
    compositional = scene_spec(scene).objects is not None
    return tuple(split for split in Split if compositional or split is not Split.COMBINATIONS)


def language_table(report: dict[Split, Evaluation]) -> str:
    """The report as a Markdown table: one row per split."""
    rows = [
        "| split | episodes | success | mean time to success | time stopped | mean U successes "
        "/ failures |",
        "|---|---|---|---|---|---|",
    ]
    for split, result in report.items():
        values = result.to_dict()
        time_to_success = values["mean_time_to_success"]
        rows.append(
            f"| {split.value} | {len(result.episodes)} | {result.success_rate:.0%} | "
            + (f"{time_to_success:.2f} s" if time_to_success is not None else "-")
            + f" | {values['stopped_fraction']:.0%} | "
            f"{_format(values['mean_uncertainty_successes'])} / "
            f"{_format(values['mean_uncertainty_failures'])} |"
        )
    if REFUSAL_SPLITS & set(report):
        rows.append(
            f"\n{', '.join(s.value for s in report if s in REFUSAL_SPLITS)}: the command names "
            f"nothing here; success = refused (every command from {REFUSAL_DEADLINE:g} s to "
            f"{REFUSAL_HORIZON:g} s a stop, no object reached)"
        )
    return "\n".join(rows)
