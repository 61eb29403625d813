"""The policy contract: what the fusion node asks of any VLA model.

An observation (a camera picture, the instruction, the joint states) goes in; an action in physical
units and one uncertainty number come out. The fusion node, the simulator's evaluation loop and the
benchmarks talk to models only through this contract, so any model family can be swapped in through
a checkpoint without touching them.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Observation:
    """One synchronised snapshot of what the robot sees, hears and feels.

    image: (height, width, 3) uint8 RGB, any size (the policy resizes to its own input).
    instruction: the normalised natural-language command.
    joint_positions: (J,) float32, in the policy's `joint_names` order.
    joint_velocities: (J,) float32 in the same order, or None when the robot does not report them.
    """

    image: np.ndarray
    instruction: str
    joint_positions: np.ndarray
    joint_velocities: np.ndarray | None = None


@dataclass(frozen=True)
class ActionProposal:
    """What the policy proposes for the next control period.

    action: (A,) float32 in physical units (m/s, rad/s), in the policy's `action_names` order.
    uncertainty: >= 0; the single number the safety node compares against its thresholds.
    components: the named parts the uncertainty was built from (for diagnostics and plots).
    """

    action: np.ndarray
    uncertainty: float
    components: Mapping[str, float] = field(default_factory=dict)


class Policy(abc.ABC):
    """A VLA policy: observation -> action with its uncertainty.

    action_names: the channels of `ActionProposal.action`: twist axes (`linear_x`, `angular_z`,
        ...) for a mobile base, or joint names for joint-velocity control.
    joint_names: the order `Observation.joint_positions` must follow.
    input_size: the picture size it was trained on, if it has one.
    """

    action_names: tuple[str, ...]
    joint_names: tuple[str, ...]
    # (height, width) of the pictures it was trained on, which the camera node should deliver
    # (its image_width and image_height); None: any size
    input_size: tuple[int, int] | None = None

    @abc.abstractmethod
    def select_action(self, observation: Observation) -> ActionProposal:
        """The action for this observation, with its uncertainty."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget per-episode state (recurrent memory, queued action chunks)."""
