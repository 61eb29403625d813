"""`vla-ros sim`: the simulator and every node as processes, a monitor here, a summary at the end.

The monitor is an ordinary ROS node on simulated time: it gives the command on /voice_command,
as a person would, and learns everything else from the topics.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, String

from vla_ros import graph
from vla_ros.cli.summary import RunSummary
from vla_ros.ros import qos
from vla_ros.ros.launcher import NodeProcesses, handle_stop_signals
from vla_ros.ros.messages import image_pixels, seconds
from vla_ros.sim.recording import Overlay, write_recording
from vla_ros.sim.scenes import default_instruction

TASK_TOPIC = "sim/task_status"
_FINISHED = ("succeeded", "timed_out", "unknown_target")


class Monitor(Node):
    def __init__(self, summary: RunSummary, record: bool, **node_options: object) -> None:
        super().__init__(
            "vla_ros_sim_monitor",
            parameter_overrides=[Parameter("use_sim_time", value=True)],
            **node_options,
        )
        self.summary = summary
        self.uncertainty = float("nan")
        self.scale = float("nan")
        self.frames: list[tuple[np.ndarray, Overlay]] = []
        self.active = False  # the fusion node is proposing (possibly holds)
        self.commanded_at: float | None = None  # wall time; the run is accounted from then on
        self.voice = self.create_publisher(String, "voice_command", qos.COMMANDS)
        self.heard: list[str] = []  # what came on voice_command (from the speech node)
        self.create_subscription(String, "voice_command", self.on_voice, qos.COMMANDS)
        self.create_subscription(String, TASK_TOPIC, self.on_task, qos.LATCHED)
        self.create_subscription(Float32, "vla/speed_scale", self.on_scale, qos.COMMANDS)
        self.create_subscription(Float32, "vla/uncertainty", self.on_uncertainty, qos.COMMANDS)
        self.create_subscription(JointState, "vla/proposal", self.on_proposal, qos.LATEST)
        self.create_subscription(DiagnosticArray, "diagnostics", self.on_diagnostics, 50)
        if record:
            self.create_subscription(Image, "camera/image_raw", self.on_image, qos.SENSOR)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_task(self, msg: String) -> None:
        try:
            self.summary.task = json.loads(msg.data)
        except json.JSONDecodeError:
            self.summary.problems.append(f"unreadable task status: {msg.data[:80]!r}")

    def on_voice(self, msg: String) -> None:
        self.heard.append(msg.data)

    def play(self, wav: Path) -> bool:
        """Have the speech node play a WAV file (its `wav` parameter); False if it cannot."""
        client = self.create_client(SetParameters, "speech_node/set_parameters")
        if not client.wait_for_service(timeout_sec=10.0):
            return False
        value = Parameter("wav", value=str(wav.resolve())).to_parameter_msg()
        future = client.call_async(SetParameters.Request(parameters=[value]))
        deadline = time.monotonic() + 10.0
        while not future.done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
        return future.done() and all(r.successful for r in future.result().results)

    def on_scale(self, msg: Float32) -> None:
        self.scale = msg.data
        if self.commanded_at is not None:
            self.summary.speed.add(self.now(), msg.data)

    def on_uncertainty(self, msg: Float32) -> None:
        self.uncertainty = msg.data
        if self.commanded_at is not None:
            self.summary.uncertainties.append(msg.data)

    def on_proposal(self, msg: JointState) -> None:
        self.active = True
        if msg.name and self.commanded_at is not None:
            self.summary.proposal_times.append(seconds(msg.header.stamp))

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "vla_ros/fusion_node":
                values = {kv.key: kv.value for kv in status.values}
                for key in ("p50_ms", "p99_ms", "max_ms"):
                    if key in values:
                        self.summary.fusion_step_ms[key] = float(values[key])

    def on_image(self, msg: Image) -> None:
        frame = camera_frame(msg)
        if frame is None:
            return
        overlay = Overlay(
            command=self.summary.command,
            uncertainty=self.uncertainty,
            speed_scale=self.scale,
            note=f"t {self.now():.1f} s  task {self.summary.task.get('state', '-')}",
        )
        self.frames.append((frame, overlay))


def camera_frame(msg: Image) -> np.ndarray | None:
    """The picture a recording keeps of a camera message; None for a fault's empty picture."""
    if msg.encoding != "rgb8" or not msg.width:
        return None
    return image_pixels(msg).copy()


def _progress_line(summary: RunSummary, monitor: Monitor, elapsed: float, duration: float) -> str:
    task = summary.task
    state = task.get("state", "starting")
    distance = task.get("distance")
    where = f" {distance:.2f} m from the {task.get('target')}" if distance is not None else ""
    return (
        f"t {elapsed:5.1f}/{duration:.0f} s | task {state}{where} | "
        f"loop {summary.loop_rate():4.1f} Hz | uncertainty {monitor.uncertainty:.3f} | "
        f"speed scale {monitor.scale:.2f}"
    )


def run(args: argparse.Namespace) -> int:
    if args.expert:
        from vla_ros.cli.sim_expert import run_expert

        return run_expert(args)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="vla_ros_sim_"))
    speech = args.speech is not None
    command = args.command or default_instruction(args.scene)
    summary = RunSummary(command="(spoken)" if speech else command, scene=args.scene)
    files = [graph.scene_config(args.scene), *args.params_file]
    parameters: dict[str, dict[str, object]] = {
        spec.executable: {"use_sim_time": True}
        for spec in graph.nodes(with_simulator=True, with_speech=speech)
    }
    if args.speech:
        parameters["speech_node"]["source"] = "wav"  # played when the nodes are ready
    parameters["sim_node"].update(
        scene=args.scene,
        objects=args.objects,
        seed=args.seed,
        real_time_factor=args.real_time_factor,
    )
    if args.checkpoint:
        parameters["fusion_node"]["checkpoint"] = args.checkpoint
    nodes = NodeProcesses(
        graph.nodes(with_simulator=True, with_speech=speech),
        files,
        parameters=parameters,
        log_dir=log_dir,
        namespace=args.namespace or "",
    )
    context = Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    monitor = Monitor(
        summary, record=args.record is not None, context=context, namespace=args.namespace or ""
    )
    executor.add_node(monitor)
    interactive = sys.stderr.isatty()
    print(f"vla-ros sim: {args.scene} scene, node logs in {log_dir}", file=sys.stderr)
    started = time.monotonic()
    status = 0
    try:
        with handle_stop_signals():
            try:
                nodes.start()
                status = _drive(args, nodes, monitor, executor, summary, interactive)
            finally:
                nodes.stop()
    except KeyboardInterrupt as stop:
        summary.problems.append(f"interrupted ({stop.args[0] if stop.args else 'SIGINT'})")
        status = 130
    finally:
        if monitor.commanded_at is not None:
            summary.startup_time = monitor.commanded_at - started
            summary.wall_time = time.monotonic() - monitor.commanded_at
        else:
            summary.startup_time = time.monotonic() - started
        frames = monitor.frames
        executor.shutdown()
        rclpy.try_shutdown(context=context)
    if interactive:
        print(file=sys.stderr)
    print(summary.render())
    (log_dir / "summary.json").write_text(summary.to_json())
    if args.record is not None and frames:
        path = write_recording(args.record, frames, fps=_frame_rate(summary, len(frames)))
        print(f"  recording       {path} ({len(frames)} frames)")
    return status


def _drive(
    args: argparse.Namespace,
    nodes: NodeProcesses,
    monitor: Monitor,
    executor: SingleThreadedExecutor,
    summary: RunSummary,
    interactive: bool,
) -> int:
    """Give the command, follow the run, and decide when it is over; returns the exit status."""
    deadline = time.monotonic() + 120.0
    # Ready when the simulator reports its task and the fusion node is active (it proposes holds
    # while it waits for a command): the policy takes seconds to load, the simulator does not.
    while not (monitor.voice.get_subscription_count() and summary.task and monitor.active):
        executor.spin_once(timeout_sec=0.1)
        if nodes.exited() or time.monotonic() > deadline:
            return _failed(nodes, summary, "the nodes did not come up")
    if args.speech is None:
        monitor.voice.publish(String(data=summary.command))
    elif not _spoken_command(args, nodes, monitor, executor, summary):
        return 1
    monitor.commanded_at = time.monotonic()
    given_at = monitor.now()
    last_print = 0.0
    while True:
        executor.spin_once(timeout_sec=0.05)
        elapsed = monitor.now() - given_at
        summary.sim_time = elapsed
        if exited := nodes.exited():
            return _failed(nodes, summary, f"node(s) ended early: {exited}")
        wall = time.monotonic()
        if wall - last_print >= (0.5 if interactive else 2.0):
            last_print = wall
            line = _progress_line(summary, monitor, elapsed, args.duration)
            print(
                f"\r{line}" if interactive else line,
                end="" if interactive else "\n",
                file=sys.stderr,
                flush=True,
            )
        finished = summary.task.get("state") in _FINISHED
        if elapsed >= args.duration or (finished and not args.keep_going):
            return 0


def _spoken_command(
    args: argparse.Namespace,
    nodes: NodeProcesses,
    monitor: Monitor,
    executor: SingleThreadedExecutor,
    summary: RunSummary,
) -> bool:
    """Wait for the speech node's first command (a WAV played, or the microphone)."""
    if args.speech:
        if not monitor.play(Path(args.speech)):
            _failed(nodes, summary, f"the speech node did not take the WAV file {args.speech}")
            return False
        print(f"vla-ros sim: playing {args.speech} to the speech node", file=sys.stderr)
    else:
        print("vla-ros sim: say a command (e.g. 'go to the red cube')", file=sys.stderr)
    deadline = time.monotonic() + 60.0
    while not monitor.heard:
        executor.spin_once(timeout_sec=0.1)
        if nodes.exited() or time.monotonic() > deadline:
            _failed(nodes, summary, "no spoken command reached /voice_command within 60 s")
            return False
    summary.command = monitor.heard[0]
    return True


def _failed(nodes: NodeProcesses, summary: RunSummary, problem: str) -> int:
    summary.problems.append(problem)
    for name in nodes.exited():
        summary.problems.append(f"{name} log ends with:\n{nodes.tail(name)}")
    return 1


def _frame_rate(summary: RunSummary, frames: int) -> float:
    return max(1.0, min(30.0, frames / max(summary.sim_time, 1e-3)))
