"""The safety layer's decisions: speed scaling by uncertainty, limits, the watchdog and stop latch.

ROS-free. `SafetyGovernor` turns proposals, stop/resume requests and the passing of time into
`Decision`s; the safety node only converts them to messages. Every path that cannot prove a
command safe ends in a stop.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from vla_ros.logic.health import Level

TWIST_AXES = ("linear_x", "linear_y", "linear_z", "angular_x", "angular_y", "angular_z")
# A velocity change is spread over at most this long, so a slow or irregular proposal stream can
# only make acceleration gentler, never harsher.
ACCEL_WINDOW_S = 0.1


class OutputMode(enum.Enum):
    TWIST = "twist"
    JOINT_VELOCITY = "joint_velocity"
    JOINT_TRAJECTORY = "joint_trajectory"


@dataclass(frozen=True)
class SafetyConfig:
    """The safety node's parameters, validated as a whole (defaults live in config/vla.yaml)."""

    output_mode: OutputMode
    joint_names: tuple[str, ...]
    max_linear_speed: float
    max_angular_speed: float
    max_joint_velocity: float
    max_linear_accel: float
    max_angular_accel: float
    max_joint_accel: float
    max_linear_brake: float
    max_angular_brake: float
    max_joint_brake: float
    uncertainty_slowdown: float
    uncertainty_stop: float
    watchdog_timeout: float
    # Finger joints of position-controlled grippers among joint_names: in joint_trajectory mode
    # they hold their commanded position through a stop, not the measured one (TrajectoryTarget).
    gripper_joints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "max_linear_speed",
            "max_angular_speed",
            "max_joint_velocity",
            "max_linear_accel",
            "max_angular_accel",
            "max_joint_accel",
            "max_linear_brake",
            "max_angular_brake",
            "max_joint_brake",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not all(
            math.isfinite(getattr(self, n)) for n in ("uncertainty_slowdown", "uncertainty_stop")
        ):
            raise ValueError("uncertainty thresholds must be finite")
        if self.uncertainty_slowdown < 0:
            raise ValueError(f"uncertainty_slowdown must be >= 0, got {self.uncertainty_slowdown}")
        if self.uncertainty_slowdown >= self.uncertainty_stop:
            raise ValueError(
                f"uncertainty_slowdown ({self.uncertainty_slowdown}) must be below "
                f"uncertainty_stop ({self.uncertainty_stop})"
            )
        if not (math.isfinite(self.watchdog_timeout) and self.watchdog_timeout > 0):
            raise ValueError(f"watchdog_timeout must be > 0 s, got {self.watchdog_timeout}")
        if len(set(self.joint_names)) != len(self.joint_names) or "" in self.joint_names:
            raise ValueError(f"joint_names must be distinct and non-empty: {self.joint_names}")
        if self.output_mode is not OutputMode.TWIST and not self.joint_names:
            raise ValueError(f"output_mode {self.output_mode.value} needs joint_names")
        strangers = [name for name in self.gripper_joints if name not in self.joint_names]
        if strangers:
            raise ValueError(f"gripper_joints {strangers} are not among joint_names")

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> SafetyConfig:
        """Build from parameter values (extra keys ignored); ValueError says what is wrong."""
        optional = {"gripper_joints"}  # a robot without a gripper need not say so
        missing = [k for k in cls.__dataclass_fields__ if k not in values and k not in optional]
        if missing:
            raise ValueError(f"missing safety parameters: {missing}")
        kwargs = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        known = [m.value for m in OutputMode]
        if kwargs["output_mode"] not in known:
            raise ValueError(f"unknown output_mode {kwargs['output_mode']!r}; use one of {known}")
        kwargs["output_mode"] = OutputMode(kwargs["output_mode"])
        kwargs["joint_names"] = tuple(kwargs["joint_names"])
        kwargs["gripper_joints"] = tuple(kwargs.get("gripper_joints") or ())
        for name, value in kwargs.items():
            if name not in ("output_mode", "joint_names", "gripper_joints"):
                kwargs[name] = float(value)
        return cls(**kwargs)

    @property
    def channels(self) -> tuple[str, ...]:
        """The output channels, in the order commands are published."""
        return TWIST_AXES if self.output_mode is OutputMode.TWIST else self.joint_names

    def speed_limits(self) -> np.ndarray:
        if self.output_mode is OutputMode.TWIST:
            return np.array([self.max_linear_speed] * 3 + [self.max_angular_speed] * 3)
        return np.full(len(self.joint_names), self.max_joint_velocity)

    def accel_limits(self) -> np.ndarray:
        if self.output_mode is OutputMode.TWIST:
            return np.array([self.max_linear_accel] * 3 + [self.max_angular_accel] * 3)
        return np.full(len(self.joint_names), self.max_joint_accel)

    def brake_limits(self) -> np.ndarray:
        """Deceleration limits per channel; inf where braking is unlimited (a limit of 0)."""
        if self.output_mode is OutputMode.TWIST:
            limits = np.array([self.max_linear_brake] * 3 + [self.max_angular_brake] * 3)
        else:
            limits = np.full(len(self.joint_names), self.max_joint_brake)
        return np.where(limits > 0, limits, np.inf)


def speed_scale(uncertainty: float, slowdown: float, stop: float) -> float:
    """1 at or below `slowdown`, 0 at or above `stop`, linear in between; 0 if not finite."""
    if not math.isfinite(uncertainty) or uncertainty >= stop:
        return 0.0
    if uncertainty <= slowdown:
        return 1.0
    return (stop - uncertainty) / (stop - slowdown)


def clamp_preserving_direction(velocity: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Shrink the whole vector until every channel is within its limit.

    Scaling all channels together keeps the direction (a base keeps its curvature, an arm its
    joint-space path) where clipping channels one by one would bend it.
    """
    magnitude = np.abs(velocity)
    over = magnitude > limits
    if not over.any():
        return velocity
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratios = np.where(over, limits / magnitude, 1.0)
    return velocity * float(ratios.min())


def limit_acceleration(
    target: np.ndarray,
    previous: np.ndarray,
    accel_limits: np.ndarray,
    dt: float,
    brake_limits: np.ndarray | None = None,
) -> np.ndarray:
    """Move from `previous` toward `target` no faster than the limits allow, along a straight line.

    Speeding a channel up (away from zero, including past zero in a reversal) is limited by
    `accel_limits`; slowing it toward zero by `brake_limits` (None or inf: unlimited, so a change
    that only brakes is never held back). When any channel is over its limit the whole change is
    scaled, never one channel alone: a base that speeds up keeps its curvature, an arm its
    joint-space direction. Stop commands do not pass through here: they are immediate.
    """
    window = min(max(dt, 0.0), ACCEL_WINDOW_S)
    speed_up = accel_limits * window
    if brake_limits is None:
        brake = np.full_like(previous, np.inf)
    else:  # unlimited stays unlimited, even over a window of zero (inf * 0 would be NaN)
        finite = np.isfinite(brake_limits)
        brake = np.full_like(previous, np.inf)
        brake[finite] = brake_limits[finite] * window
    # The interval each channel may reach: toward zero by `brake` (once at zero, the rest of a
    # reversal is a speed-up the other way), away from zero by `speed_up`.
    with np.errstate(invalid="ignore"):
        braked = np.abs(previous) - brake
        direction = np.sign(previous)
        toward_zero = np.where(braked > 0, direction * braked, -direction * speed_up)
    high = np.where(previous >= 0, previous + speed_up, toward_zero)
    low = np.where(previous > 0, toward_zero, previous - speed_up)
    change = target - previous
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(change > 0, (high - previous) / change, (low - previous) / change)
    fraction = float(np.min(np.where(change != 0, room, 1.0), initial=1.0))
    if fraction >= 1.0:
        return target.copy()  # exactly: previous + (target - previous) can round
    return previous + change * max(0.0, fraction)


class InvalidProposal(ValueError):
    """A proposal that cannot be turned into a command; the message says why."""


@dataclass(frozen=True)
class Proposal:
    stamp: float  # seconds, on the node's clock
    names: tuple[str, ...]
    velocities: np.ndarray
    uncertainty: float

    @property
    def is_hold(self) -> bool:
        """The fusion node has nothing safe to propose (stale or faulty inputs)."""
        return not self.names


def map_channels(proposal: Proposal, channels: Sequence[str]) -> np.ndarray:
    """The proposal's velocities in output-channel order; channels it leaves out are zero."""
    if len(proposal.velocities) != len(proposal.names):
        raise InvalidProposal(
            f"proposal has {len(proposal.velocities)} velocities for {len(proposal.names)} names"
        )
    index = {name: i for i, name in enumerate(channels)}
    unknown = [name for name in proposal.names if name not in index]
    if unknown:
        raise InvalidProposal(f"proposal names channels this output does not have: {unknown}")
    if not np.all(np.isfinite(proposal.velocities)):
        raise InvalidProposal("proposal contains NaN or inf velocities")
    out = np.zeros(len(channels))
    for name, value in zip(proposal.names, proposal.velocities, strict=True):
        out[index[name]] = value
    return out


@dataclass(frozen=True)
class Ignored:
    """A proposal that feeds nothing: too old, or not newer than the last one."""

    reason: str


@dataclass(frozen=True)
class Decision:
    """One output command. `velocities` is in `SafetyConfig.channels` order; zero when stopped."""

    velocities: np.ndarray
    speed_scale: float
    stopped: bool
    level: Level
    reason: str


@dataclass
class _Motion:
    velocities: np.ndarray
    time: float | None = None


@dataclass
class SafetyGovernor:
    """Everything the safety node decides, as a state machine over explicit times."""

    config: SafetyConfig
    last_proposal_time: float | None = None
    last_proposal_stamp: float | None = None
    stop_reason: str | None = None
    waiting_reason: str = "no proposal received yet"  # why there is no proposal to follow
    _motion: _Motion = field(init=False)

    def __post_init__(self) -> None:
        self._motion = _Motion(np.zeros(len(self.config.channels)))

    def reconfigure(self, config: SafetyConfig) -> None:
        """Swap limits and thresholds; a change of channels restarts motion from rest."""
        if config.channels != self.config.channels:
            self._motion = _Motion(np.zeros(len(config.channels)))
        self.config = config

    # -- stop latch ---------------------------------------------------------------------------
    def request_stop(self, reason: str, now: float) -> Decision:
        self.stop_reason = reason
        return self.stop(now, Level.WARN, f"stopped: {reason}")

    def resume(self) -> bool:
        """Clear the stop latch; True if it was set."""
        was_stopped = self.stop_reason is not None
        self.stop_reason = None
        return was_stopped

    def on_clock_jump_back(self, now: float, reason: str) -> Decision:
        """Time went backwards: stop now, and follow only proposals stamped in the new time.

        Forgetting the last proposal's time and stamp is what lets the new ones through: stamped
        in the new time, they would otherwise never be newer than the last one.
        """
        self.last_proposal_time = None
        self.last_proposal_stamp = None
        self.waiting_reason = reason
        return self.stop(now, Level.WARN, f"stopped: {reason}")

    # -- inputs -------------------------------------------------------------------------------
    def on_proposal(self, proposal: Proposal, now: float) -> Decision | Ignored:
        """The command for a proposal; a stale one is Ignored and the watchdog decides."""
        age = now - proposal.stamp
        if abs(age) > self.config.watchdog_timeout:
            when = f"{age:.2f} s old" if age > 0 else f"stamped {-age:.2f} s in the future"
            return Ignored(
                f"proposal {when} (watchdog_timeout {self.config.watchdog_timeout:g} s): check "
                "that all nodes share use_sim_time and synchronised clocks"
            )
        if self.last_proposal_stamp is not None and proposal.stamp <= self.last_proposal_stamp:
            return Ignored("proposal stamp does not advance")
        self.last_proposal_stamp = proposal.stamp
        self.last_proposal_time = now
        if self.stop_reason is not None:
            return self.stop(now, Level.WARN, f"stopped: {self.stop_reason}")
        if proposal.is_hold:
            return self.stop(now, Level.WARN, "stopped: the fusion node proposes no motion")
        try:
            target = map_channels(proposal, self.config.channels)
        except InvalidProposal as error:
            return self.stop(now, Level.ERROR, f"stopped: {error}")
        scale = speed_scale(
            proposal.uncertainty,
            self.config.uncertainty_slowdown,
            self.config.uncertainty_stop,
        )
        if scale == 0.0:
            return self.stop(
                now,
                Level.WARN,
                f"stopped: uncertainty {proposal.uncertainty:.3g} at or above "
                f"{self.config.uncertainty_stop:g}",
            )
        command = clamp_preserving_direction(target, self.config.speed_limits()) * scale
        dt = ACCEL_WINDOW_S if self._motion.time is None else now - self._motion.time
        command = limit_acceleration(
            command,
            self._motion.velocities,
            self.config.accel_limits(),
            dt,
            self.config.brake_limits(),
        )
        self._motion = _Motion(command, now)
        if scale < 1.0:
            return Decision(
                command,
                scale,
                False,
                Level.WARN,
                f"slowed to {scale:.0%}: uncertainty {proposal.uncertainty:.3g} above "
                f"{self.config.uncertainty_slowdown:g}",
            )
        return Decision(command, scale, False, Level.OK, "moving")

    def on_tick(self, now: float) -> Decision | None:
        """A stop command while the watchdog has expired or a stop is latched; else None."""
        if self.stop_reason is not None:
            return self.stop(now, Level.WARN, f"stopped: {self.stop_reason}")
        if self.last_proposal_time is None:
            return self.stop(now, Level.WARN, f"stopped: {self.waiting_reason}")
        silent = now - self.last_proposal_time
        if silent > self.config.watchdog_timeout:
            return self.stop(
                now,
                Level.ERROR,
                f"stopped: no fresh proposal for {silent:.2f} s "
                f"(watchdog_timeout {self.config.watchdog_timeout:g} s)",
            )
        return None

    def stop(self, now: float, level: Level, reason: str) -> Decision:
        """A stop command for this moment, without latching (see `request_stop`)."""
        zeros = np.zeros(len(self.config.channels))
        self._motion = _Motion(zeros)  # from rest, the next change gets a full window
        return Decision(zeros, 0.0, True, level, reason)


@dataclass
class TrajectoryTarget:
    """Where a joint_trajectory command points, given the decision and the measured positions.

    Moving: one control window ahead of the measured positions. Stopped: the positions measured
    when the stop began, held for as long as it lasts: re-reading them would follow an arm that
    sags under gravity all the way down, and the zero pose would slam it. With no measurement
    yet there is nothing safe to point at (None: publish nothing).

    A gripper's finger joint (`gripper`, per joint) is different: its position controller grips
    with a force that grows with how far its target lies inside the object, and the measured
    position of fingers closed on an object is where the object stops them. A target at the
    measured position, moving or stopped, would let go: the object slips out. So a finger's
    target integrates the commanded velocity (from the measured position when there is no
    target yet; at most one window's travel at `speed_limits` away from the measured position,
    so it cannot wind up far past an object), and a stop holds the last commanded target: a
    squeezing grip keeps its force, and a finger moving freely is within that window of its
    target, so it stops at most that far along the way it was already going.
    """

    gripper: np.ndarray | None = None  # bool per joint: a gripper's finger
    speed_limits: np.ndarray | None = None  # per joint, bounds how far a finger's target leads
    held: np.ndarray | None = None
    commanded: np.ndarray | None = None  # the last target sent while moving
    commanded_at: float | None = None

    @classmethod
    def for_config(cls, config: SafetyConfig) -> TrajectoryTarget:
        gripper = np.array([name in config.gripper_joints for name in config.joint_names])
        return cls(gripper, config.speed_limits())

    def positions(
        self, decision: Decision, measured: np.ndarray | None, now: float = 0.0
    ) -> np.ndarray | None:
        if not decision.stopped:
            self.held = None
            if measured is None:
                return None
            target = measured + decision.velocities * ACCEL_WINDOW_S
            fingers = self.gripper
            if fingers is not None and fingers.any():
                elapsed = ACCEL_WINDOW_S if self.commanded_at is None else now - self.commanded_at
                start = measured if self.commanded is None else self.commanded
                lead = self.speed_limits * ACCEL_WINDOW_S
                moved = start + decision.velocities * min(max(elapsed, 0.0), ACCEL_WINDOW_S)
                target[fingers] = np.clip(moved, measured - lead, measured + lead)[fingers]
            self.commanded, self.commanded_at = target, now
            return target
        if self.held is None and measured is not None:
            self.held = measured.copy()
            if self.commanded is not None and self.gripper is not None:
                self.held[self.gripper] = self.commanded[self.gripper]
        return self.held

    def forget(self) -> None:
        """The joints changed: a held target for the old ones means nothing."""
        self.held = None
        self.commanded = None
        self.commanded_at = None
