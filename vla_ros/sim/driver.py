"""What a robot's driver does with the commands it hears, ROS-free: the sim node's command logic.

Three kinds of command arrive (a twist, joint velocities, a one-point joint trajectory); the
driver keeps the latest and says what to apply at each physics step:
- velocities (a twist, joint velocities, a trajectory point with velocities) hold for
  `command_timeout` seconds and then fall to zero, as a real base or arm stops when its driver
  stops hearing from the controller;
- a trajectory point with positions only is a goal: the joints move towards it (at most at their
  velocity limits) until another command replaces it, as a position controller does.
Commands are checked when they arrive; a bad one raises ValueError and stops the robot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vla_ros.sim.scenes import Drive, SceneSpec

DEFAULT_COMMAND_TIMEOUT = 0.5  # seconds
MIN_GOAL_TIME = 0.2  # seconds: the fastest a position goal is approached (time_from_start floor)


@dataclass(frozen=True)
class Setpoint:
    """What to apply now: a twist (the scene's action order) or the scene's joint velocities."""

    drive: Drive
    values: np.ndarray


@dataclass(frozen=True)
class _Command:
    drive: Drive
    values: np.ndarray
    received: float
    goal: bool = False  # values are joint positions to reach, with gain 1 / time to reach them
    gain: float = 0.0


class CommandDriver:
    def __init__(self, spec: SceneSpec, command_timeout: float = DEFAULT_COMMAND_TIMEOUT) -> None:
        self.spec = spec
        self.command_timeout = command_timeout
        self._command: _Command | None = None

    def stop(self) -> None:
        self._command = None

    def twist(self, linear_x: float, angular_z: float, now: float) -> None:
        if self.spec.drive is not Drive.TWIST:
            raise ValueError(
                f"scene {self.spec.name!r} has no mobile base: send joint commands "
                "(/joint_commands or /joint_trajectory)"
            )
        self._accept(Drive.TWIST, [linear_x, angular_z], now)

    def joint_velocities(self, values: Sequence[float], now: float) -> None:
        """Velocities for every joint of the scene, in its `joint_names` order."""
        self._accept(Drive.JOINT_VELOCITY, values, now)

    def trajectory_point(
        self,
        joint_names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float],
        time_from_start: float,
        current_positions: np.ndarray,
        now: float,
    ) -> None:
        """Follow the point's velocities if it has them, else move towards its positions.

        Joints the trajectory does not name keep still; a joint the scene lacks refuses the point.
        """
        self.stop()  # a refused point stops the robot rather than keep the last command going
        names = self.spec.joint_names
        unknown = [name for name in joint_names if name not in names]
        if unknown:
            raise ValueError(
                f"trajectory names joints {unknown} that scene {self.spec.name!r} lacks"
            )
        if len(set(joint_names)) != len(joint_names):
            raise ValueError("trajectory names a joint twice")
        index = [names.index(name) for name in joint_names]
        if len(velocities):
            full = np.zeros(len(names))
            full[index] = self._checked(velocities, len(joint_names), "trajectory velocities")
            self._accept(Drive.JOINT_VELOCITY, full, now)
            return
        goal = np.array(current_positions, dtype=float)
        goal[index] = self._checked(positions, len(joint_names), "trajectory positions")
        self._command = _Command(
            Drive.JOINT_VELOCITY,
            goal,
            now,
            goal=True,
            gain=1.0 / max(time_from_start, MIN_GOAL_TIME),
        )

    def setpoint(self, now: float, joint_positions: np.ndarray) -> Setpoint:
        """What to apply at time `now`, given the joints' current positions."""
        command = self._command
        if command is None:
            return Setpoint(self.spec.drive, np.zeros(len(self.spec.action_names)))
        if command.goal:
            return Setpoint(command.drive, command.gain * (command.values - joint_positions))
        if now - command.received > self.command_timeout:
            return Setpoint(command.drive, np.zeros_like(command.values))
        return Setpoint(command.drive, command.values)

    def _accept(self, drive: Drive, values: Sequence[float], now: float) -> None:
        self.stop()  # a refused command stops the robot rather than keep the last one going
        size = len(self.spec.action_names if drive is Drive.TWIST else self.spec.joint_names)
        self._command = _Command(drive, self._checked(values, size, "command"), now)

    def _checked(self, values: Sequence[float], size: int, what: str) -> np.ndarray:
        array = np.asarray(values, dtype=float).reshape(-1)
        if array.shape != (size,):
            raise ValueError(
                f"{what} has {array.size} values, scene {self.spec.name!r} takes {size}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{what} has NaN or inf values")
        return array
