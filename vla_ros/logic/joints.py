"""Joint states: validation and ordering into the configured `joint_names`.

Robots often publish their joints from several sources (arm, gripper, head) on one topic, so a
message may carry only some of the configured joints. `JointStateAssembler` keeps the latest
finite value of each configured joint and yields a complete, ordered sample once every joint is
known; the sample's stamp is its oldest joint's, so a joint that stops updating makes the whole
sample age.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


class InvalidJointState(ValueError):
    """A joint-state message that cannot be used; the message says why."""


@dataclass(frozen=True)
class JointSample:
    stamp: float
    names: tuple[str, ...]
    positions: np.ndarray
    velocities: np.ndarray | None  # None when any configured joint's velocity is unknown


@dataclass
class _JointValue:
    stamp: float
    position: float
    velocity: float | None


@dataclass
class JointStateAssembler:
    """Assembles complete samples in `joint_names` order from possibly partial messages.

    With no `joint_names` configured, every message must be complete on its own and is passed
    through in its own order.
    """

    joint_names: tuple[str, ...]
    _latest: dict[str, _JointValue] = field(default_factory=dict)

    def update(
        self,
        stamp: float,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float],
    ) -> tuple[JointSample | None, tuple[str, ...]]:
        """Add one message; returns the complete sample (or None) and the ignored extra joints.

        A message that names none of the configured joints (another publisher on the topic, such
        as a gripper's) is ignored: (None, all its names). NaN, inf or missing velocities mean
        "unknown" (ros2_control publishes NaN for position-only joints), never a fault.
        Raises InvalidJointState (and forgets the joints the message names) on inconsistent
        arrays or a position that is NaN or inf.
        """
        names = tuple(names)
        if not names:
            raise InvalidJointState("joint state names no joints")
        if len(positions) != len(names):
            raise InvalidJointState(f"{len(positions)} positions for {len(names)} joint names")
        if len(velocities) and len(velocities) != len(names):
            raise InvalidJointState(f"{len(velocities)} velocities for {len(names)} joint names")
        if len(set(names)) != len(names):
            raise InvalidJointState(f"duplicate joint names in {list(names)}")
        wanted = self.joint_names or names
        known = [n for n in names if n in wanted]
        if not known:
            return None, names
        values: dict[str, _JointValue] = {}
        for i, name in enumerate(names):
            if name not in wanted:
                continue
            position = float(positions[i])
            if not math.isfinite(position):
                for stale in known:
                    self._latest.pop(stale, None)
                raise InvalidJointState(f"joint {name!r} position is not finite ({position})")
            velocity = float(velocities[i]) if len(velocities) else math.nan
            known_velocity = velocity if math.isfinite(velocity) else None
            values[name] = _JointValue(stamp, position, known_velocity)
        if not self.joint_names:
            self._latest = {}
        self._latest.update(values)
        extra = tuple(n for n in names if n not in wanted)
        return self._sample(wanted), extra

    def forget(self) -> None:
        """Drop every value (ROS time jumped back: their stamps belong to the old time)."""
        self._latest.clear()

    def missing(self) -> tuple[str, ...]:
        return tuple(n for n in self.joint_names if n not in self._latest)

    def _sample(self, order: Sequence[str]) -> JointSample | None:
        if any(name not in self._latest for name in order):
            return None
        values = [self._latest[name] for name in order]
        velocities = None
        if all(v.velocity is not None for v in values):
            velocities = np.array([v.velocity for v in values], dtype=np.float64)
        return JointSample(
            stamp=min(v.stamp for v in values),
            names=tuple(order),
            positions=np.array([v.position for v in values], dtype=np.float64),
            velocities=velocities,
        )


def select_joints(
    names: Sequence[str], values: Sequence[float], wanted: Sequence[str]
) -> np.ndarray:
    """`values` re-ordered to `wanted`; KeyError names the joints that are missing."""
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in wanted if name not in index]
    if missing:
        raise KeyError(f"joints {missing} are not in the joint state ({list(names)})")
    return np.array([values[index[name]] for name in wanted], dtype=np.float32)
