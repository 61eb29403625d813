"""`vla-ros sim --expert`: the scripted expert drives the simulated robot through ROS topics.

Only the sim node runs, with its `expert` parameter: every control period it publishes the expert's
command on /cmd_vel (or /joint_commands) and takes it back from the topic, as a robot takes a
teleoperator's. This monitor plays the operator: for each episode it sets the seed, resets the
simulator, says the task on /voice_command, waits for the task to end, holds still for a moment and
says "stop". `vla-ros record` in the same graph records it all, with the same latencies a real
robot's topics have; `--record FILE` keeps the camera view as a video. Episode i uses the same seed
and words as episode i of `vla-ros train`'s collector with the same --seed, so the two kinds of
data are comparable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from vla_ros import graph
from vla_ros.cli.sim_command import camera_frame
from vla_ros.learn.collect import DEFAULT_ACTION_NOISE, DEFAULT_HOLD_STEPS
from vla_ros.learn.episodes import episode_seed, sample_instruction
from vla_ros.logic.commands import parse_command
from vla_ros.ros import qos
from vla_ros.ros.launcher import NodeProcesses, handle_stop_signals
from vla_ros.ros.messages import seconds
from vla_ros.sim.recording import Overlay, write_recording
from vla_ros.sim.scenes import CONTROL_PERIOD, scene_with_objects
from vla_ros.sim.world import SimWorld

TASK_TOPIC = "sim/task_status"
FINISHED = ("succeeded", "timed_out", "unknown_target")
STARTUP_TIMEOUT = 60.0  # wall seconds for the sim node to come up
CALL_TIMEOUT = 10.0


class Operator(Node):
    """Gives commands and follows the task status, on simulated time."""

    def __init__(self, record: bool = False, **options: Any) -> None:
        super().__init__(
            "vla_ros_sim_operator",
            parameter_overrides=[Parameter("use_sim_time", value=True)],
            **options,
        )
        self.status: dict[str, Any] = {}
        self.command = ""  # the task said last
        self.frames: list[tuple[np.ndarray, Overlay]] = []
        self.frame_stamps: list[float] = []
        if record:
            self.create_subscription(Image, "camera/image_raw", self._on_image, qos.SENSOR)
        self.voice = self.create_publisher(String, "voice_command", qos.COMMANDS)
        self.create_subscription(String, TASK_TOPIC, self._on_status, qos.LATCHED)
        self.reset = self.create_client(Trigger, "sim/reset")
        self.parameters = self.create_client(SetParameters, "sim_node/set_parameters")

    def _on_status(self, msg: String) -> None:
        # a garbled status is as good as none: the next one comes within a second
        with contextlib.suppress(json.JSONDecodeError):
            self.status = json.loads(msg.data)

    def _on_image(self, msg: Image) -> None:
        frame = camera_frame(msg)
        if frame is None:
            return
        stamp = seconds(msg.header.stamp)
        note = f"expert  t {stamp:.1f} s  task {self.status.get('state', '-')}"
        self.frames.append((frame, Overlay(command=self.command, note=note)))
        self.frame_stamps.append(stamp)

    def frame_rate(self) -> float:
        """Frames per simulated second, so the video plays at the simulation's speed."""
        span = self.frame_stamps[-1] - self.frame_stamps[0] if self.frame_stamps else 0.0
        return max(1.0, min(30.0, (len(self.frame_stamps) - 1) / span)) if span > 0 else 10.0

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


def _instruction(world: SimWorld, seed: int) -> str:
    world.reset(seed)
    return sample_instruction(world, seed)


def run_expert(args: argparse.Namespace) -> int:
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="vla_ros_sim_"))
    noise = args.expert_noise
    seeds = [episode_seed(args.seed, index) for index in range(args.episodes)]
    parameters = {
        "sim_node": {
            "use_sim_time": True,
            "scene": args.scene,
            "objects": args.objects,
            "seed": seeds[0],
            "real_time_factor": args.real_time_factor,
            "expert": True,
            "expert_noise": DEFAULT_ACTION_NOISE if noise is None else noise,
        }
    }
    nodes = NodeProcesses(
        [graph.SIM_NODE],
        [graph.scene_config(args.scene), *args.params_file],
        parameters=parameters,
        log_dir=log_dir,
        namespace=args.namespace or "",
    )
    # The words of each episode, as the collector draws them (from what the episode shows).
    with SimWorld(scene_with_objects(args.scene, args.objects), camera_size=(8, 8)) as world:
        commands = [args.command or _instruction(world, seed) for seed in seeds]
    context = Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    operator = Operator(args.record is not None, context=context, namespace=args.namespace or "")
    executor.add_node(operator)
    print(f"vla-ros sim --expert: {args.scene}, node logs in {log_dir}", file=sys.stderr)
    results: list[str] = []
    status = 0
    try:
        with handle_stop_signals():
            try:
                nodes.start()
                _run_episodes(args, executor, operator, nodes, seeds, commands, results)
            finally:
                nodes.stop()
    except KeyboardInterrupt as stop:
        results.append(f"  interrupted ({stop.args[0] if stop.args else 'SIGINT'})")
        status = 130
    except RuntimeError as error:
        results.append(f"  failed: {error}")
        status = 1
    finally:
        executor.shutdown()
        rclpy.try_shutdown(context=context)
    solved = sum("succeeded" in line for line in results)
    print(f"vla-ros sim --expert summary ({args.scene}): {solved}/{len(seeds)} succeeded")
    print("\n".join(results))
    if args.record is not None and operator.frames:
        path = write_recording(args.record, operator.frames, fps=operator.frame_rate())
        print(f"  recording       {path} ({len(operator.frames)} frames)")
    return status


def _run_episodes(
    args: argparse.Namespace,
    executor: SingleThreadedExecutor,
    operator: Operator,
    nodes: NodeProcesses,
    seeds: list[int],
    commands: list[str],
    results: list[str],
) -> None:
    if not _spin_until(
        executor,
        lambda: operator.status and operator.voice.get_subscription_count(),
        STARTUP_TIMEOUT,
        nodes,
    ):
        raise RuntimeError(f"the sim node did not come up; log:\n{nodes.tail('sim_node')}")
    for index, (seed, command) in enumerate(zip(seeds, commands, strict=True)):
        if index:
            _new_episode(executor, operator, seed, nodes)
        outcome = _episode(args, executor, operator, command, nodes)
        results.append(f"  episode {index + 1:3d}  seed {seed:10d}  {outcome:10s} {command!r}")
        print(results[-1], file=sys.stderr, flush=True)


def _spin_until(
    executor: SingleThreadedExecutor, done: Any, timeout: float, nodes: NodeProcesses
) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        executor.spin_once(timeout_sec=0.05)
        if nodes.exited():
            raise RuntimeError(f"the sim node ended early; log:\n{nodes.tail('sim_node')}")
        if time.monotonic() > deadline:
            return False
    return True


def _call(executor: SingleThreadedExecutor, client: Any, request: Any, nodes: NodeProcesses) -> Any:
    if not client.wait_for_service(timeout_sec=CALL_TIMEOUT):
        raise RuntimeError(f"service {client.srv_name} did not appear")
    future = client.call_async(request)
    if not _spin_until(executor, future.done, CALL_TIMEOUT, nodes):
        raise RuntimeError(f"service {client.srv_name} did not answer")
    return future.result()


def _new_episode(
    executor: SingleThreadedExecutor, operator: Operator, seed: int, nodes: NodeProcesses
) -> None:
    """Seed and reset the simulator, and wait for the new episode's status."""
    request = SetParameters.Request(parameters=[Parameter("seed", value=seed).to_parameter_msg()])
    result = _call(executor, operator.parameters, request, nodes).results[0]
    if not result.successful:
        raise RuntimeError(f"the sim node refused seed {seed}: {result.reason}")
    episode = operator.status.get("episode", 0)
    _call(executor, operator.reset, Trigger.Request(), nodes)
    if not _spin_until(
        executor, lambda: operator.status.get("episode", 0) > episode, CALL_TIMEOUT, nodes
    ):
        raise RuntimeError("the simulator did not report its new episode")


def _episode(
    args: argparse.Namespace,
    executor: SingleThreadedExecutor,
    operator: Operator,
    command: str,
    nodes: NodeProcesses,
) -> str:
    """Say the task, wait for its end (or --duration), hold still, say stop; the outcome."""
    operator.voice.publish(String(data=command))
    operator.command = command
    given = operator.now()
    heard = parse_command(command).text  # as the simulator keeps it

    def over() -> bool:
        status = operator.status
        ended = status.get("instruction") == heard and status.get("state") in FINISHED
        return ended or operator.now() - given >= args.duration

    _spin_until(executor, over, args.duration / args.real_time_factor + 60.0, nodes)
    outcome = str(operator.status.get("state", "unknown"))
    # The expert holds still for a moment after the end, as the collector's episodes do.
    hold_until = operator.now() + DEFAULT_HOLD_STEPS * CONTROL_PERIOD
    _spin_until(executor, lambda: operator.now() >= hold_until, 30.0, nodes)
    operator.voice.publish(String(data="stop"))
    # Reliable, but only once heard: a recorder must get the last "stop" before this exits.
    operator.voice.wait_for_all_acked(Duration(seconds=2.0))
    return outcome
