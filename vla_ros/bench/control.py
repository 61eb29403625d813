"""Benchmarks of the running control graph: the safety node's latency, the fusion loop's rate.

Each benchmark runs in a DDS domain of its own and measures real nodes: the safety node in this
process (its own clock from proposal arrival to command publication, and the probe's round
trip), the fusion loop with every control node as its own process, as deployed.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState

from vla_ros import graph
from vla_ros.bench.feed import SyntheticRobot
from vla_ros.ros import qos
from vla_ros.ros.launcher import NodeProcesses
from vla_ros.ros.messages import seconds

BENCH_DOMAIN = 97


@dataclass
class Measurement:
    """A benchmark's summary (for JSON and the table) and its raw samples in ms (for plots)."""

    summary: dict[str, object]
    samples_ms: dict[str, list[float]] = field(default_factory=dict)


def _percentiles_ms(seconds_list: list[float]) -> dict[str, float]:
    values = 1e3 * np.asarray(seconds_list)
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "max_ms": float(values.max()),
    }


def _spin_until(executor: SingleThreadedExecutor, condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return bool(condition())


def safety_latency(samples: int = 2000, domain_id: int = BENCH_DOMAIN) -> Measurement:
    """Proposal in -> command out, `samples` times, one at a time."""
    from vla_ros.nodes.safety_node import SafetyNode

    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    executor = SingleThreadedExecutor(context=context)
    try:
        safety = SafetyNode(
            context=context,
            parameter_overrides=[Parameter("max_linear_accel", value=100.0)],
        )
        probe = Node("bench_probe", context=context)
        executor.add_node(safety)
        executor.add_node(probe)
        arrivals: list[float] = []
        probe.create_subscription(
            Twist, "cmd_vel", lambda _: arrivals.append(time.perf_counter()), qos.COMMANDS
        )
        proposals = probe.create_publisher(JointState, "vla/proposal", qos.LATEST)
        if not _spin_until(executor, lambda: proposals.get_subscription_count() > 0, 10.0):
            raise RuntimeError("the safety node did not subscribe to /vla/proposal")
        round_trips = []
        for i in range(samples):
            msg = JointState(name=["linear_x", "angular_z"], velocity=[0.2, 0.1 * (i % 3)])
            msg.effort = [0.1, 0.1]
            msg.header.stamp = probe.get_clock().now().to_msg()
            before = len(arrivals)
            sent = time.perf_counter()
            proposals.publish(msg)
            if not _spin_until(executor, lambda n=before: len(arrivals) > n, 5.0):
                raise RuntimeError(f"no command for proposal {i}")
            round_trips.append(arrivals[-1] - sent)
        node = safety.latency.summary_ms()
    finally:
        executor.shutdown()
        rclpy.try_shutdown(context=context)
    summary = {
        "samples": samples,
        "node_proposal_to_command": node,
        "round_trip_through_dds": _percentiles_ms(round_trips),
    }
    return Measurement(summary, {"round trip through DDS": [1e3 * t for t in round_trips]})


def fusion_loop(
    duration: float = 20.0, rate_hz: float = 10.0, domain_id: int = BENCH_DOMAIN + 1
) -> Measurement:
    """Every control node as a process, fed by a synthetic robot; the fusion loop's real rate."""
    env = {"ROS_DOMAIN_ID": str(domain_id)}
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    executor = SingleThreadedExecutor(context=context)
    log_dir = Path(tempfile.mkdtemp(prefix="vla_ros_bench_"))
    nodes = NodeProcesses(
        graph.CONTROL_NODES,
        [graph.scene_config("mobile")],
        parameters={"fusion_node": {"rate_hz": rate_hz}},
        log_dir=log_dir,
        env={**os.environ, **env},
    )
    try:
        probe = Node("bench_probe", context=context)
        executor.add_node(probe)
        robot = SyntheticRobot(probe)
        stamps: list[float] = []
        fusion_status: list[dict[str, str]] = []
        probe.create_subscription(
            JointState,
            "vla/proposal",
            lambda m: stamps.append(seconds(m.header.stamp)) if m.name else None,
            qos.LATEST,
        )
        probe.create_subscription(
            DiagnosticArray,
            "diagnostics",
            lambda a: fusion_status.extend(
                {kv.key: kv.value for kv in s.values}
                for s in a.status
                if s.name == "vla_ros/fusion_node" and s.values
            ),
            qos.COMMANDS,
        )
        nodes.start()
        _spin_until(executor, lambda: robot.voice.get_subscription_count() > 0, 60.0)
        robot.say("go to the red cube")
        if not _spin_until(executor, lambda: len(stamps) > 5, 120.0):
            raise RuntimeError(f"the fusion node proposed nothing; logs in {log_dir}")
        start = len(stamps)
        _spin_until(executor, lambda: False, duration)
        window = np.asarray(stamps[start:])
        periods = np.diff(window)
    finally:
        nodes.stop()
        executor.shutdown()
        rclpy.try_shutdown(context=context)
    last = fusion_status[-1] if fusion_status else {}
    summary = {
        "target_rate_hz": rate_hz,
        "achieved_rate_hz": float((len(window) - 1) / (window[-1] - window[0])),
        "period": _percentiles_ms(list(periods)),
        "fusion_step_p50_ms": float(last.get("p50_ms", "nan")),
        "fusion_step_p99_ms": float(last.get("p99_ms", "nan")),
        "overruns": int(last.get("overruns", "0")),
        "duration_s": duration,
    }
    return Measurement(summary, {"fusion loop period": list(1e3 * periods)})
