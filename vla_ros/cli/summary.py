"""What a `vla-ros sim` run amounts to: accumulated from the topics, printed at the end.

ROS-free: the monitor node feeds it values with their (simulation) times.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from vla_ros.sim.tasks import PLACE_PREPOSITIONS

# A speed-scale sample stands for at most this long; a longer silence is not counted as driving.
_MAX_SAMPLE_SPAN = 0.5


@dataclass
class SpeedAccount:
    """Time spent at full speed, slowed, or stopped by the safety node."""

    full: float = 0.0
    slowed: float = 0.0
    stopped: float = 0.0
    _last: tuple[float, float] | None = None

    def add(self, time: float, scale: float) -> None:
        if self._last is not None:
            last_time, last_scale = self._last
            span = min(max(time - last_time, 0.0), _MAX_SAMPLE_SPAN)
            if last_scale >= 1.0:
                self.full += span
            elif last_scale <= 0.0:
                self.stopped += span
            else:
                self.slowed += span
        self._last = (time, scale)

    @property
    def total(self) -> float:
        return self.full + self.slowed + self.stopped


@dataclass
class RunSummary:
    command: str
    scene: str
    proposal_times: list[float] = field(default_factory=list)
    uncertainties: list[float] = field(default_factory=list)
    speed: SpeedAccount = field(default_factory=SpeedAccount)
    task: dict[str, object] = field(default_factory=dict)
    fusion_step_ms: dict[str, float] = field(default_factory=dict)
    sim_time: float = 0.0
    startup_time: float = 0.0  # wall seconds until the nodes were ready for the command
    wall_time: float = 0.0  # wall seconds from the command to the end
    problems: list[str] = field(default_factory=list)

    def loop_rate(self) -> float:
        """Proposals per simulated second over the run (holds excluded)."""
        times = self.proposal_times
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def outcome(self) -> str:
        state = self.task.get("state", "no task status received")
        target = self.task.get("target")
        if state == "succeeded":
            elapsed = _number(self.task.get("finished_at")) - _number(self.task.get("started_at"))
            return f"succeeded: {self._done()} in {elapsed:.1f} s"
        if state == "running":
            return f"not finished: still going for the {target} when the run ended"
        message = self.task.get("message", "")
        return f"{state}: {message}" if message else str(state)

    def _done(self) -> str:
        """What succeeding meant, as the task's kind says."""
        target, kind = self.task.get("target"), self.task.get("kind")
        if kind == "pick":
            return f"picked up the {target}"
        if kind == "place":
            place = str(self.task.get("place"))
            return f"put the {target} {PLACE_PREPOSITIONS.get(place.split()[-1], 'on')} the {place}"
        return f"reached the {target}"

    def as_dict(self) -> dict[str, object]:
        uncertainties = np.asarray(self.uncertainties) if self.uncertainties else np.array([np.nan])
        return {
            "command": self.command,
            "scene": self.scene,
            "outcome": self.outcome(),
            "task": self.task,
            "sim_time_s": round(self.sim_time, 3),
            "startup_time_s": round(self.startup_time, 3),
            "wall_time_s": round(self.wall_time, 3),
            "proposals": len(self.proposal_times),
            "loop_rate_hz": round(self.loop_rate(), 3),
            "fusion_step_ms": self.fusion_step_ms,
            "uncertainty_mean": _round(float(np.mean(uncertainties))),
            "uncertainty_p95": _round(float(np.percentile(uncertainties, 95))),
            "time_full_speed_s": round(self.speed.full, 2),
            "time_slowed_s": round(self.speed.slowed, 2),
            "time_stopped_s": round(self.speed.stopped, 2),
            "problems": self.problems,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def render(self) -> str:
        """The human-readable summary printed at the end of a run."""
        d = self.as_dict()
        speed = self.speed
        total = speed.total or math.nan
        step = self.fusion_step_ms
        lines = [
            f"vla-ros sim summary ({self.scene}, '{self.command}')",
            f"  task outcome    {d['outcome']}",
            f"  run             {d['sim_time_s']:.1f} s simulated in {d['wall_time_s']:.1f} s "
            f"(after {d['startup_time_s']:.1f} s starting the nodes)",
            f"  loop rate       {d['loop_rate_hz']:.1f} Hz ({d['proposals']} proposals)",
            "  fusion latency  p50 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms".format(
                step.get("p50_ms", math.nan),
                step.get("p99_ms", math.nan),
                step.get("max_ms", math.nan),
            ),
            f"  uncertainty     mean {d['uncertainty_mean']}, p95 {d['uncertainty_p95']}",
            f"  safety node     {_share('full speed', speed.full, total)}, "
            f"{_share('slowed', speed.slowed, total)}, {_share('stopped', speed.stopped, total)}",
        ]
        lines += [f"  problem         {problem}" for problem in self.problems]
        return "\n".join(lines)


def _share(label: str, seconds: float, total: float) -> str:
    return f"{label} {seconds:.1f} s ({seconds / total:.0%})"


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)
