"""fusion_node: picture + instruction + joint states -> a stamped proposal and its uncertainty.

A lifecycle node: the policy is loaded on configure and the control loop runs while active
(both at start-up unless `autostart` is false). A timer at `rate_hz` triggers each step on a
thread of its own (see vla_ros.logic.worker for why not rclpy's multi-threaded executor), so
input callbacks are never starved by inference, and a tick that finds the previous step still
running is dropped and counted as an overrun. Whenever an input is missing, stale or faulty, or
the model misbehaves, the node proposes no motion (an empty proposal) and says why on
diagnostics; after such a hold the policy starts afresh (no queued chunk, no memory from before).
Proposals go out on lifecycle publishers: nothing while inactive. A changed model setting loads
the new policy beside the running one, which keeps proposing until the new one is ready; a
failed load is reported and changes nothing.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.timer import Timer
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, Header, String

from vla_ros.logic.clock import jump_message
from vla_ros.logic.commands import InvalidCommand, parse_command
from vla_ros.logic.freshness import age_problem
from vla_ros.logic.health import FaultLog, Level
from vla_ros.logic.joints import select_joints
from vla_ros.logic.params import ParamSpec, ParamType
from vla_ros.logic.safety import Proposal
from vla_ros.logic.stats import LatencyStats, RateMeter
from vla_ros.logic.worker import BackgroundLoader, TriggeredWorker
from vla_ros.model.policy import Observation, Policy
from vla_ros.ros import qos
from vla_ros.ros.clock import watch_clock
from vla_ros.ros.diagnostics import DiagnosticsReporter
from vla_ros.ros.logging import log_at
from vla_ros.ros.messages import image_pixels, proposal_message, seconds, to_stamp
from vla_ros.ros.params import ParameterSet
from vla_ros.ros.runner import run_node

NAME = "fusion_node"
PARAMS = (
    ParamSpec("rate_hz", ParamType.DOUBLE, "Proposals per second", 0.1, 100.0),
    ParamSpec(
        "checkpoint",
        ParamType.STRING,
        "Policy checkpoint: a folder, a hub id or a shipped name; empty = the shipped default",
    ),
    ParamSpec("device", ParamType.STRING, "Where the model runs", choices=("cpu", "cuda", "auto")),
    ParamSpec(
        "mc_samples",
        ParamType.INTEGER,
        "Monte Carlo samples for models that use them; 0 = the checkpoint's setting",
        0,
        1024,
    ),
    ParamSpec(
        "precision",
        ParamType.STRING,
        "What a transformers vision backbone runs in: float32 as trained; bfloat16 halves its time "
        "on CPUs with AVX512-BF16 or AMX and on GPUs; int8 quantises its linear layers (CPU)",
        choices=("float32", "bfloat16", "int8"),
    ),
    ParamSpec(
        "threads",
        ParamType.INTEGER,
        "PyTorch intra-op threads; 0 = one per core. 1 leaves the other cores to the rest of "
        "the graph; a heavy backbone gains from more",
        0,
        256,
    ),
    ParamSpec("max_image_age", ParamType.DOUBLE, "Oldest usable picture (seconds)", 0.001, 3600.0),
    ParamSpec(
        "max_joint_state_age",
        ParamType.DOUBLE,
        "Oldest usable joint state (seconds)",
        0.001,
        3600.0,
    ),
    ParamSpec(
        "autostart",
        ParamType.BOOL,
        "Configure and activate at start-up (false: wait for lifecycle transitions)",
        read_only=True,
    ),
)
_MODEL_PARAMS = {"checkpoint", "device", "mc_samples", "precision", "threads"}


def _validate(values: Mapping[str, Any]) -> None:
    """Refuse model settings that cannot load, before anything changes."""
    import torch

    from vla_ros.model.checkpoint import (
        hub_id_problem,
        read_config,
        resolve_checkpoint,
        resolve_device,
    )
    from vla_ros.model.config import VisionKind
    from vla_ros.model.speed import check_backbone_precision

    if values["mc_samples"] == 1:
        raise ValueError("mc_samples must be 0 (the checkpoint's setting) or at least 2")
    device = torch.device(resolve_device(values["device"]))
    checkpoint = values["checkpoint"]
    hub_id = hub_id_problem(checkpoint) is None and not Path(checkpoint).expanduser().exists()
    if not hub_id:
        # A hub id is fetched (or fails) only when loading, beside the running policy; anything
        # else must be a checkpoint here and now, or the change is refused.
        config = read_config(resolve_checkpoint(checkpoint))
        check_backbone_precision(values["precision"], config.vision.kind is VisionKind.HF, device)


class FusionNode(LifecycleNode):
    def __init__(self, **node_options: Any) -> None:
        super().__init__(NAME, **node_options)
        self.params = ParameterSet(self, PARAMS, NAME, validate=_validate, on_change=self.on_params)
        self.clock = watch_clock(self, self.on_clock_jump_back)
        self.diagnostics = DiagnosticsReporter(self)
        self.faults = FaultLog()
        self.loop_rate = RateMeter()
        self.latency = LatencyStats()
        self.overruns = 0
        self.holds = 0
        self.policy: Policy | None = None
        self.checkpoint_in_use: str | None = None
        self.load_problem: str | None = None  # the last model change that failed to load
        self.loader = BackgroundLoader(self._load, self.on_load_failed, name="policy_loader")
        self.timer: Timer | None = None
        self.worker: TriggeredWorker | None = None
        self.image: Image | None = None
        self.joint_state: JointState | None = None
        self.instruction: str | None = None
        self.policy_instruction: str | None = None  # what the policy's state is for; None = fresh
        self.proposal_publisher = self.create_lifecycle_publisher(
            JointState, "vla/proposal", qos.LATEST
        )
        self.uncertainty_publisher = self.create_lifecycle_publisher(
            Float32, "vla/uncertainty", qos.COMMANDS
        )
        self.create_subscription(Image, "vla/image", self.on_image, qos.LATEST)
        self.create_subscription(JointState, "vla/joint_states", self.on_joint_state, qos.LATEST)
        self.create_subscription(String, "vla/instruction", self.on_instruction, qos.LATCHED)
        self.create_timer(1.0, self.report)
        self.diagnostics.report(Level.WARN, "unconfigured: no policy loaded")
        configured = self.params["autostart"] and self.trigger_configure()
        if configured == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def now(self) -> float:
        return self.clock.now()

    # -- lifecycle ----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.install(self._load(self.params.values), self.params["checkpoint"])
        except Exception as error:  # any failure to load is reported, never a crash
            self.report_load_failure(self.params["checkpoint"], error)
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the publishers before the first step
        self.start_loop()
        self.diagnostics.report(Level.OK, "active")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_loop()
        self.hold("inactive", Level.WARN)  # the last proposal before the publishers go quiet
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.policy = None
        self.diagnostics.report(Level.WARN, "unconfigured: no policy loaded")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_loop()
        self.policy = None
        return TransitionCallbackReturn.SUCCESS

    # -- loading policies ---------------------------------------------------------------------
    def _load(self, values: Mapping[str, Any]) -> Policy:
        from vla_ros.model import load_policy

        return load_policy(
            values["checkpoint"],
            device=values["device"],
            mc_samples=values["mc_samples"] or None,
            precision=values["precision"],
            threads=values["threads"] or None,
        )

    def install(self, policy: Policy, checkpoint: str) -> None:
        """Make `policy` the one that proposes (from the loop thread, or before it runs)."""
        self.policy = policy
        self.policy_instruction = None
        self.checkpoint_in_use = checkpoint
        self.load_problem = None
        gc.freeze()  # a loaded model is long-lived (see run_node)
        self.get_logger().info(
            f"policy {checkpoint or '(shipped default)'} ready: actions {list(policy.action_names)}"
        )

    def on_load_failed(self, values: Mapping[str, Any], error: BaseException) -> None:
        self.report_load_failure(values["checkpoint"], error)

    def report_load_failure(self, checkpoint: str, error: BaseException) -> None:
        reason = f"cannot load checkpoint {checkpoint or '(shipped default)'!r}: {error}"
        if self.policy is not None:
            reason += f"; still running {self.checkpoint_in_use or '(shipped default)'!r}"
        self.load_problem = reason
        self.get_logger().error(reason)
        self.diagnostics.report(Level.ERROR, reason)

    def start_loop(self) -> None:
        if self.timer is not None:
            self.destroy_timer(self.timer)
        if self.worker is None:
            self.worker = TriggeredWorker(self.step, self.on_step_error, name="fusion_loop")
        self.timer = self.create_timer(1.0 / self.params["rate_hz"], self.tick)

    def stop_loop(self) -> None:
        """Stop the timer and let a running step finish."""
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def destroy_node(self) -> None:
        self.stop_loop()  # a step still running would publish through destroyed handles
        super().destroy_node()

    def on_params(self, values: Mapping[str, Any], changed: set[str]) -> None:
        if "rate_hz" in changed and self.timer is not None:
            self.start_loop()
        if changed & _MODEL_PARAMS and self.policy is not None:
            self.get_logger().info(
                f"loading checkpoint {values['checkpoint'] or '(shipped default)'!r} beside the "
                "running policy"
            )
            self.loader.request(dict(values))

    def on_clock_jump_back(self, before: float, after: float) -> None:
        # Inputs stamped before the jump are "in the future" now: forget them, wait for new ones.
        self.image = None
        self.joint_state = None
        self.hold(jump_message(before, after), Level.WARN)

    # -- inputs -------------------------------------------------------------------------------
    def on_image(self, msg: Image) -> None:
        self.image = msg

    def on_joint_state(self, msg: JointState) -> None:
        self.joint_state = msg

    def on_instruction(self, msg: String) -> None:
        try:
            command = parse_command(msg.data)
        except InvalidCommand:
            return
        # A stop is the safety node's business; the task stays, so /vla/resume continues it.
        if not command.is_stop and command.text != self.instruction:
            self.instruction = command.text
            self.get_logger().info(f"new instruction: {command.text!r}")

    # -- the control loop ---------------------------------------------------------------------
    def tick(self) -> None:
        if self.worker is not None and not self.worker.trigger():
            self.overruns += 1

    def on_step_error(self, error: BaseException) -> None:
        self.hold(f"control loop failed: {type(error).__name__}: {error}", Level.ERROR)

    def step(self) -> None:
        started = time.perf_counter()
        now = self.now()
        if (loaded := self.loader.take()) is not None:
            values, policy = loaded
            self.install(policy, values["checkpoint"])
        try:
            observation = self.observe(now)
        except ValueError as error:
            self.hold(str(error), Level.WARN)
            return
        proposal = self.propose(observation, now)
        if proposal is None:
            return
        header = Header(stamp=to_stamp(now))
        self.proposal_publisher.publish(proposal_message(proposal, header))
        self.uncertainty_publisher.publish(Float32(data=float(proposal.uncertainty)))
        self.latency.add(time.perf_counter() - started)
        self.loop_rate.tick(now)
        if self.load_problem is None:
            self.diagnostics.report(Level.OK, "proposing")
        else:
            self.diagnostics.report(Level.WARN, f"proposing; {self.load_problem}")

    def observe(self, now: float) -> Observation:
        """The policy's observation from the latest inputs; ValueError says what is missing."""
        policy = self.policy
        if policy is None:
            raise ValueError("no policy loaded")
        if self.instruction is None:
            raise ValueError("waiting for a command on /voice_command")
        image, joints = self.image, self.joint_state
        if image is None:
            raise ValueError("waiting for camera pictures")
        if image.width == 0 or image.height == 0:
            raise ValueError("camera fault or unusable picture (see camera_node diagnostics)")
        problem = age_problem(
            seconds(image.header.stamp), now, self.params["max_image_age"], "picture"
        )
        if problem:
            raise ValueError(problem)
        if joints is None:
            raise ValueError("waiting for joint states")
        if not joints.name:
            raise ValueError("unusable joint state (see joint_state_node diagnostics)")
        problem = age_problem(
            seconds(joints.header.stamp), now, self.params["max_joint_state_age"], "joint state"
        )
        if problem:
            raise ValueError(problem)
        try:
            positions = select_joints(joints.name, joints.position, policy.joint_names)
            velocities = (
                select_joints(joints.name, joints.velocity, policy.joint_names)
                if len(joints.velocity)
                else None
            )
        except KeyError as error:
            raise ValueError(f"the policy needs {error.args[0]}") from None
        return Observation(image_pixels(image), self.instruction, positions, velocities)

    def propose(self, observation: Observation, now: float) -> Proposal | None:
        """The policy's proposal, or None (after holding) if the model fails or is not finite."""
        policy = self.policy
        if observation.instruction != self.policy_instruction:
            policy.reset()
            self.policy_instruction = observation.instruction
        try:
            result = policy.select_action(observation)
        except Exception as error:  # a model failure is a stop with a reason, never a crash
            self.hold(f"model failed: {type(error).__name__}: {error}", Level.ERROR)
            return None
        action = np.asarray(result.action, dtype=np.float64)
        if not (np.all(np.isfinite(action)) and math.isfinite(result.uncertainty)):
            self.hold("the model produced NaN or inf: proposing no motion", Level.ERROR)
            return None
        return Proposal(now, tuple(policy.action_names), action, float(result.uncertainty))

    def hold(self, reason: str, level: Level) -> None:
        """Propose no motion, and say why. The policy starts afresh on the next proposal: a
        queued action chunk or a memory was computed from pictures before the hold."""
        self.holds += 1
        self.policy_instruction = None
        self.proposal_publisher.publish(JointState(header=Header(stamp=to_stamp(self.now()))))
        if self.faults.record(reason):
            log_at(self.get_logger(), level, f"proposing no motion: {reason}")
        self.diagnostics.report(level, f"no motion: {reason}")

    def report(self) -> None:
        now = self.now()
        rate = self.loop_rate.rate(now)
        values: dict[str, object] = {
            "rate_hz": rate,
            "target_rate_hz": self.params["rate_hz"],
            "overruns": self.overruns,
            "holds": self.holds,
            **self.latency.summary_ms(),
        }
        level, message = self.diagnostics.level, self.diagnostics.message
        if level is Level.OK and 0 < rate < 0.8 * self.params["rate_hz"]:
            level, message = Level.WARN, f"rate missed: {rate:.1f} Hz of {self.params['rate_hz']:g}"
        self.diagnostics.report(level, message, values)


def main(args: list[str] | None = None) -> int:
    return run_node(FusionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
