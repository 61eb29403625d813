"""Soak: the whole simulated stack for a long time, the command changing every 20 s.

Reported per window (5 minutes by default): each node's resident memory (RSS) and its growth,
the fusion loop's rate and how far it drifts from `rate_hz`, proposals missing against the rate
(dropped), the proposal period's p99, and the fusion step's p99 as the node reports it. A leak or
a slowly degrading loop shows as a trend across windows, which a short benchmark cannot see.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from vla_ros import graph
from vla_ros.ros import qos
from vla_ros.ros.launcher import NodeProcesses
from vla_ros.ros.messages import seconds

SOAK_DOMAIN = 93
COMMANDS = (
    "go to the red cube",
    "go to the green sphere",
    "go to the blue cylinder",
    "go to the yellow capsule",
)


def parse_duration(text: str) -> float:
    """'30m', '90s', '1h', '45' (seconds) -> seconds; ValueError otherwise."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    value = float(number) * units[unit]
    if not value > 0:
        raise ValueError(f"a duration must be > 0, got {text!r}")
    return value


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MB; nan once it has ended."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@dataclass
class Window:
    start_s: float
    rss_mb: dict[str, float]
    rate_hz: float
    dropped: int
    period_p99_ms: float
    fusion_step_p99_ms: float
    holds: int


@dataclass
class SoakReport:
    rate_hz: float
    windows: list[Window] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        first, last = self.windows[0], self.windows[-1]
        growth = {name: last.rss_mb[name] - first.rss_mb[name] for name in first.rss_mb}
        rates = [w.rate_hz for w in self.windows]
        return {
            "windows": [w.__dict__ for w in self.windows],
            "rss_growth_mb": growth,
            "rate_drift_hz": max(rates) - min(rates),
            "dropped_total": sum(w.dropped for w in self.windows),
            "period_p99_ms_worst": max(w.period_p99_ms for w in self.windows),
        }


class _Monitor(Node):
    def __init__(self, context: Context) -> None:
        super().__init__(
            "vla_ros_soak",
            context=context,
            parameter_overrides=[Parameter("use_sim_time", value=True)],
        )
        self.stamps: list[float] = []  # of every proposal, holds included
        self.holds = 0
        self.fusion: dict[str, str] = {}
        self.voice = self.create_publisher(String, "voice_command", qos.COMMANDS)
        self.create_subscription(JointState, "vla/proposal", self.on_proposal, qos.LATEST)
        self.create_subscription(DiagnosticArray, "diagnostics", self.on_diagnostics, 50)

    def on_proposal(self, msg: JointState) -> None:
        self.stamps.append(seconds(msg.header.stamp))
        self.holds += not msg.name

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "vla_ros/fusion_node" and status.values:
                self.fusion = {kv.key: kv.value for kv in status.values}


def soak(
    duration: float,
    window: float = 300.0,
    command_every: float = 20.0,
    out: Path | None = None,
    domain_id: int = SOAK_DOMAIN,
) -> SoakReport:
    """Run the simulated stack for `duration` wall seconds; one Window every `window` s."""
    log_dir = Path(tempfile.mkdtemp(prefix="vla_ros_soak_")) if out is None else out / "soak_logs"
    everyone = {spec.executable: {"use_sim_time": True} for spec in graph.nodes(True)}
    everyone["sim_node"]["episode_timeout"] = 86400.0  # the world goes on; only commands change
    nodes = NodeProcesses(
        graph.nodes(with_simulator=True),
        [graph.scene_config("mobile")],
        parameters=everyone,
        log_dir=log_dir,
        env={**os.environ, "ROS_DOMAIN_ID": str(domain_id)},
    )
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    executor = SingleThreadedExecutor(context=context)
    monitor = _Monitor(context)
    executor.add_node(monitor)
    rate_hz = 10.0
    report = SoakReport(rate_hz)
    try:
        nodes.start()
        deadline = time.monotonic() + 120.0
        while monitor.voice.get_subscription_count() == 0 or not monitor.stamps:
            executor.spin_once(timeout_sec=0.1)
            if time.monotonic() > deadline or nodes.exited():
                raise RuntimeError(
                    f"the stack did not come up (ended: {nodes.exited() or 'none'}); "
                    f"logs in {log_dir}"
                )
        started = time.monotonic()
        next_command = started
        window_start, first_stamp = started, len(monitor.stamps)
        holds_before = monitor.holds
        command = 0
        while True:
            now = time.monotonic()
            if now >= window_start + window or now >= started + duration:
                stamps = np.asarray(monitor.stamps[first_stamp:])
                report.windows.append(
                    _window(window_start - started, stamps, rate_hz, nodes, monitor, holds_before)
                )
                print(_line(report.windows[-1]), file=sys.stderr, flush=True)
                window_start, first_stamp = now, len(monitor.stamps)
                holds_before = monitor.holds
            if now >= started + duration:
                break
            if now >= next_command:
                monitor.voice.publish(String(data=COMMANDS[command % len(COMMANDS)]))
                command += 1
                next_command += command_every
            if exited := nodes.exited():
                raise RuntimeError(f"node(s) ended during the soak: {exited}; logs in {log_dir}")
            executor.spin_once(timeout_sec=0.05)
    finally:
        nodes.stop()
        executor.shutdown()
        rclpy.try_shutdown(context=context)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "soak.json").write_text(json.dumps(report.summary(), indent=2))
    return report


def _window(
    start: float,
    stamps: np.ndarray,
    rate_hz: float,
    nodes: NodeProcesses,
    monitor: _Monitor,
    holds_before: int,
) -> Window:
    span = float(stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    periods = np.diff(stamps)
    return Window(
        start_s=start,
        rss_mb={name: rss_mb(p.pid) for name, p in nodes.processes.items()},
        rate_hz=(len(stamps) - 1) / span if span else 0.0,
        dropped=max(0, round(span * rate_hz) + 1 - len(stamps)),
        period_p99_ms=float(np.percentile(periods, 99) * 1e3) if len(periods) else float("nan"),
        fusion_step_p99_ms=float(monitor.fusion.get("p99_ms", "nan")),
        holds=monitor.holds - holds_before,
    )


def _line(w: Window) -> str:
    memory = ", ".join(f"{name.removesuffix('_node')} {mb:.0f}" for name, mb in w.rss_mb.items())
    return (
        f"t {w.start_s / 60:5.1f} min | {w.rate_hz:5.2f} Hz | dropped {w.dropped} | "
        f"period p99 {w.period_p99_ms:.0f} ms | step p99 {w.fusion_step_p99_ms:.0f} ms | "
        f"holds {w.holds} | RSS MB: {memory}"
    )
