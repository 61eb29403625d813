"""sim_node: the embedded MuJoCo simulator, speaking the topics a Gazebo or ros2_control robot does.

Publishes /camera/image_raw (rgb8, sensor-data QoS), /joint_states, /clock and the task's status
on /sim/task_status (JSON in a std_msgs/String, latched); takes /cmd_vel (Twist, or TwistStamped
with `cmd_vel_stamped`), /joint_commands, /joint_trajectory and /voice_command (the task follows
the latest instruction; stop words leave it as it is); /sim/reset starts a new episode from the
`seed` parameter. With `expert`, the scripted expert publishes its command on /cmd_vel (or
/joint_commands) every control period and the node takes it back from the topic, as a robot takes
a teleoperator's (`vla-ros sim --expert`, which `vla-ros record` can record).

Time: the node steps the physics on the steady clock at `real_time_factor` simulated seconds per
wall second and publishes the simulated time on /clock; every stamp it sends is that time. The
stepping runs on a thread of its own, not as an executor callback: rendering and stepping take
milliseconds, and as a callback they kept the node's own command subscriptions waiting. The
clock never runs backwards: a reset starts a new episode where the last one ended (task times
in the status are on the same clock). Run the other nodes with use_sim_time:=true.

All simulation logic is in vla_ros.sim (SimWorld, CommandDriver); this node converts messages.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile
from rclpy.subscription import Subscription
from rosgraph_msgs.msg import Clock as ClockMessage
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, Header, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_ros.logic.commands import InvalidCommand, parse_command
from vla_ros.logic.health import FaultLog, Level
from vla_ros.logic.params import ParamSpec, ParamType
from vla_ros.ros import qos
from vla_ros.ros.diagnostics import DiagnosticsReporter
from vla_ros.ros.messages import cdr_string_bytes, rgb_image, seconds, to_stamp
from vla_ros.ros.params import ParameterSet
from vla_ros.ros.runner import run_node
from vla_ros.sim.driver import CommandDriver
from vla_ros.sim.experts import expert_action
from vla_ros.sim.scenes import OBJECT_CHOICES, SCENES, Drive, scene_with_objects
from vla_ros.sim.tasks import TaskState, TaskStatus
from vla_ros.sim.world import MAX_CAMERA_SIDE, SimWorld

NAME = "sim_node"
PARAMS = (
    ParamSpec(
        "scene",
        ParamType.STRING,
        "Simulated robot and world (fixed at start-up)",
        choices=tuple(SCENES),
        read_only=True,
    ),
    ParamSpec(
        "objects",
        ParamType.STRING,
        "What the scene shows (fixed at start-up): fixed (its four objects) or compositional "
        "(3-5 objects drawn per episode from 7 colours x 5 shapes)",
        choices=OBJECT_CHOICES,
        read_only=True,
    ),
    ParamSpec(
        "seed",
        ParamType.INTEGER,
        "Episode seed (object placement, start pose) at start-up and on /sim/reset: the same "
        "seed gives the same scene; -1 draws a new one each time",
        -1,
        2**32 - 1,  # the range of the episode seeds collection and evaluation draw
    ),
    ParamSpec(
        "camera_width",
        ParamType.INTEGER,
        "Camera picture width (pixels)",
        1,
        MAX_CAMERA_SIDE,
        read_only=True,
    ),
    ParamSpec(
        "camera_height",
        ParamType.INTEGER,
        "Camera picture height (pixels)",
        1,
        MAX_CAMERA_SIDE,
        read_only=True,
    ),
    ParamSpec(
        "camera_rate_hz", ParamType.DOUBLE, "Camera pictures per simulated second", 0.1, 200.0
    ),
    ParamSpec(
        "joint_state_rate_hz", ParamType.DOUBLE, "Joint states per simulated second", 1.0, 1000.0
    ),
    ParamSpec(
        "real_time_factor",
        ParamType.DOUBLE,
        "Simulated seconds per wall-clock second (above 1: faster than real time, for when "
        "nothing waits on the simulation)",
        0.01,
        100.0,
    ),
    ParamSpec(
        "episode_timeout",
        ParamType.DOUBLE,
        "Simulated seconds a task may take before it counts as timed out",
        0.1,
        86400.0,
    ),
    ParamSpec(
        "task", ParamType.STRING, "First instruction (empty: none); /voice_command replaces it"
    ),
    ParamSpec("cmd_vel_stamped", ParamType.BOOL, "Take geometry_msgs/TwistStamped on /cmd_vel"),
    ParamSpec(
        "expert",
        ParamType.BOOL,
        "Let the scripted expert drive: it publishes its command for the current task on "
        "/cmd_vel (or /joint_commands) every control period, as a teleoperator would, and the "
        "robot takes it back from the topic like any other command (fixed at start-up)",
        read_only=True,
    ),
    ParamSpec(
        "expert_noise",
        ParamType.DOUBLE,
        "Gaussian noise on the expert's commands while its task runs, as a fraction of each "
        "channel's limit (DART, as the demonstration collector uses)",
        0.0,
        1.0,
    ),
    ParamSpec(
        "command_timeout",
        ParamType.DOUBLE,
        "Simulated seconds a velocity command holds before the robot stops (driver timeout)",
        0.01,
        60.0,
    ),
)

TICK_HZ = 100.0  # wall-clock rate of the stepping loop
CHUNK = 0.01  # simulated seconds stepped between checks for due publications
MAX_BACKLOG = 0.25  # simulated seconds the loop may owe; beyond it the simulation slows down
STATUS_PERIOD = 1.0  # simulated seconds between task status updates without a change
# Reliable: matches reliable and best-effort subscribers alike (rviz, robot_state_publisher).
STATE_QOS = QoSProfile(depth=10)


class SimNode(Node):
    def __init__(self, **node_options: Any) -> None:
        super().__init__(NAME, **node_options)
        self.params = ParameterSet(self, PARAMS, NAME, on_change=self.on_params)
        values = self.params.values
        self.world = SimWorld(
            scene_with_objects(values["scene"], values["objects"]),
            camera_size=(values["camera_height"], values["camera_width"]),
            seed=None if values["seed"] < 0 else values["seed"],
            episode_timeout=values["episode_timeout"],
        )
        self.driver = CommandDriver(self.world.spec, values["command_timeout"])
        self.diagnostics = DiagnosticsReporter(self)
        self.faults = FaultLog()
        self.episode = 1
        self._clock_offset = 0.0  # node time = offset + the episode's time: never runs back
        self._backlog = 0.0
        self._last_tick = time.monotonic()
        self._rate_window = (time.monotonic(), self.now())
        self._achieved_rate = 0.0
        self._due = {"camera": 0.0, "joints": 0.0, "status": 0.0, "expert": 0.0}
        self._published_status: TaskStatus | None = None

        self.image_publisher = self.create_publisher(Image, "camera/image_raw", qos.SENSOR)
        self.joint_publisher = self.create_publisher(JointState, "joint_states", STATE_QOS)
        self.clock_publisher = self.create_publisher(ClockMessage, "/clock", STATE_QOS)
        self.status_publisher = self.create_publisher(String, "sim/task_status", qos.LATCHED)
        self.cmd_vel_subscription: Subscription | None = None
        self._subscribe_cmd_vel()
        self.expert_publisher: Publisher | None = None
        if values["expert"]:
            self.expert_publisher = self._expert_publisher()
            self._noise = np.random.default_rng(self.world.seed)
        self.create_subscription(
            Float64MultiArray, "joint_commands", self.on_joint_commands, qos.COMMANDS
        )
        self.create_subscription(
            JointTrajectory, "joint_trajectory", self.on_joint_trajectory, qos.COMMANDS
        )
        # Raw bytes, so text that is not UTF-8 is refused here instead of failing in rclpy.
        self.create_subscription(String, "voice_command", self.on_voice, qos.COMMANDS, raw=True)
        self.create_service(Trigger, "sim/reset", self.on_reset)

        if values["task"]:
            self.world.set_instruction(values["task"])
        self._publish_due(force=True)
        self.get_logger().info(
            f"scene {self.world.spec.name}, seed {self.world.seed}, camera "
            f"{values['camera_width']}x{values['camera_height']} at {values['camera_rate_hz']:g} Hz"
        )
        # Callbacks (commands, reset, parameters) and the stepping thread take turns on the world.
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._running.set()
        self._stepper = threading.Thread(target=self._step_loop, name="sim-stepping", daemon=True)
        self._stepper.start()

    def now(self) -> float:
        """The node's simulated time: monotonic across episodes."""
        return self._clock_offset + self.world.time

    # -- stepping -----------------------------------------------------------------------------
    def _step_loop(self) -> None:
        """Tick at TICK_HZ on the steady clock (whatever clock the node follows) until destroyed."""
        period = 1.0 / TICK_HZ
        next_tick = time.monotonic()
        while self._running.is_set():
            with self._lock:
                self.on_tick()
            next_tick = max(next_tick + period, time.monotonic())
            time.sleep(max(0.0, next_tick - time.monotonic()))

    def on_tick(self) -> None:
        wall = time.monotonic()
        owed = self._backlog + (wall - self._last_tick) * self.params["real_time_factor"]
        self._last_tick = wall
        self._backlog = min(owed, MAX_BACKLOG)
        timestep = float(self.world.model.opt.timestep)
        while self._backlog >= timestep:
            steps = max(1, min(int(self._backlog / timestep), round(CHUNK / timestep)))
            self._apply_setpoint()
            self.world.step(steps * timestep)
            self._backlog -= steps * timestep
            self._publish_due()
        self._measure_rate(wall)

    def _apply_setpoint(self) -> None:
        setpoint = self.driver.setpoint(self.now(), self.world.joint_state().positions)
        if setpoint.drive is Drive.TWIST:
            self.world.apply_command(setpoint.values)
        else:
            self.world.apply_joint_velocities(setpoint.values)

    def _publish_due(self, force: bool = False) -> None:
        now = self.now()
        stamp = to_stamp(now)
        self.clock_publisher.publish(ClockMessage(clock=stamp))
        if force or now >= self._due["joints"]:
            self._due["joints"] = _next_due(
                self._due["joints"], now, self.params["joint_state_rate_hz"]
            )
            names, positions, velocities = self.world.joint_state()
            self.joint_publisher.publish(
                JointState(
                    header=Header(stamp=stamp),
                    name=list(names),
                    position=positions.tolist(),
                    velocity=velocities.tolist(),
                )
            )
        if force or now >= self._due["camera"]:
            self._due["camera"] = _next_due(self._due["camera"], now, self.params["camera_rate_hz"])
            header = Header(stamp=stamp, frame_id=f"{self.world.spec.camera}_camera")
            self.image_publisher.publish(rgb_image(self.world.render(), header))
        if self.expert_publisher is not None and now >= self._due["expert"]:
            period = self.world.spec.control_period
            self._due["expert"] = _next_due(self._due["expert"], now, 1.0 / period)
            self._publish_expert(stamp)
        status = self.world.task_status()
        if force or status != self._published_status or now >= self._due["status"]:
            self._due["status"] = now + STATUS_PERIOD
            self._publish_status(status)

    def _expert_publisher(self) -> Publisher:
        if self.world.spec.drive is not Drive.TWIST:
            return self.create_publisher(Float64MultiArray, "joint_commands", qos.COMMANDS)
        kind = TwistStamped if self.params["cmd_vel_stamped"] else Twist
        return self.create_publisher(kind, "cmd_vel", qos.COMMANDS)

    def _publish_expert(self, stamp: Time) -> None:
        """The expert's command once a task was given (zeros once it is over, as a teleoperator
        holding still), through the topic the robot listens to."""
        assert self.expert_publisher is not None
        if self.world.tracker.task is None:
            return
        action = expert_action(self.world)
        noise = self.params["expert_noise"]
        if noise > 0 and self.world.task_status().state is TaskState.RUNNING:
            limits = np.asarray(self.world.spec.action_limits)
            action = action + self._noise.normal(0.0, noise * limits)
        if self.world.spec.drive is not Drive.TWIST:
            self.expert_publisher.publish(Float64MultiArray(data=action.tolist()))
            return
        twist = Twist()
        twist.linear.x, twist.angular.z = float(action[0]), float(action[1])
        if self.params["cmd_vel_stamped"]:
            self.expert_publisher.publish(TwistStamped(header=Header(stamp=stamp), twist=twist))
        else:
            self.expert_publisher.publish(twist)

    def _publish_status(self, status: TaskStatus) -> None:
        if self._published_status is None or status.state != self._published_status.state:
            self.get_logger().info(f"task {status.state.value}: {status.message}")
        self._published_status = status
        report = status.to_dict()
        # Task times on the node's clock (the one on /clock and in every stamp).
        for key in ("started_at", "finished_at"):
            if report[key] is not None:
                report[key] = round(self._clock_offset + report[key], 6)
        report.update(
            scene=self.world.spec.name, episode=self.episode, seed=self.world.seed, time=self.now()
        )
        self.status_publisher.publish(String(data=json.dumps(report)))
        self._report_health()

    def _measure_rate(self, wall: float) -> None:
        start_wall, start_sim = self._rate_window
        if wall - start_wall >= 1.0:
            self._achieved_rate = (self.now() - start_sim) / (wall - start_wall)
            self._rate_window = (wall, self.now())
            self._report_health()

    def _report_health(self) -> None:
        target = self.params["real_time_factor"]
        status = self.world.task_status()
        level, message = Level.OK, f"running: task {status.state.value}"
        if self._achieved_rate and self._achieved_rate < 0.8 * target:
            level = Level.WARN
            message = f"slower than asked: real-time factor {self._achieved_rate:.2f} of {target:g}"
        self.diagnostics.report(
            level,
            message,
            {
                "scene": self.world.spec.name,
                "episode": self.episode,
                "seed": self.world.seed,
                "task": status.instruction or "-",
                "task_state": status.state.value,
                "sim_time": self.now(),
                "real_time_factor": self._achieved_rate,
                "refused_inputs": self.faults.total,
            },
        )

    # -- inputs -------------------------------------------------------------------------------
    def on_twist(self, msg: Twist | TwistStamped) -> None:
        twist = msg.twist if isinstance(msg, TwistStamped) else msg
        self._command(lambda: self.driver.twist(twist.linear.x, twist.angular.z, self.now()))

    def on_joint_commands(self, msg: Float64MultiArray) -> None:
        self._command(lambda: self.driver.joint_velocities(msg.data, self.now()))

    def on_joint_trajectory(self, msg: JointTrajectory) -> None:
        if not msg.points:
            with self._lock:
                self.driver.stop()  # an empty trajectory cancels: hold still
            return
        point = msg.points[0]
        self._command(
            lambda: self.driver.trajectory_point(
                msg.joint_names,
                point.positions,
                point.velocities,
                seconds(point.time_from_start),
                self.world.joint_positions(self.world.spec.joint_names),
                self.now(),
            )
        )

    def _command(self, accept: Callable[[], None]) -> None:
        try:
            with self._lock:
                accept()
        except ValueError as error:
            self._refuse(f"refused command: {error}")

    def on_voice(self, raw: bytes) -> None:
        try:
            command = parse_command(cdr_string_bytes(raw))
        except (InvalidCommand, ValueError) as error:
            self._refuse(f"refused voice command: {error}")
            return
        if not command.is_stop:  # a stop halts the robot (safety node), not the task
            with self._lock:
                self._publish_status(self.world.set_instruction(command.text))

    def _refuse(self, reason: str) -> None:
        if self.faults.record(reason):
            self.get_logger().warning(reason)
        self.diagnostics.report(Level.WARN, reason, {"refused_inputs": self.faults.total})

    def on_reset(self, _: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            return self._reset(response)

    def _reset(self, response: Trigger.Response) -> Trigger.Response:
        seed = self.params["seed"]
        # The new episode starts one physics step after the last message of the old one, so no
        # two messages of a topic ever share a stamp.
        self._clock_offset = self.now() + float(self.world.model.opt.timestep)
        self.driver.stop()
        status = self.world.reset(None if seed < 0 else seed)
        self.episode += 1
        self._published_status = None
        self._due = dict.fromkeys(self._due, self.now())
        self._publish_due(force=True)
        response.success = True
        response.message = (
            f"episode {self.episode}: scene {self.world.spec.name}, seed {self.world.seed}, "
            f"task {status.instruction or 'none'} ({status.state.value})"
        )
        self.get_logger().info(f"/sim/reset: {response.message}")
        return response

    def on_params(self, values: Mapping[str, Any], changed: set[str]) -> None:
        with self._lock:
            self._apply_params(values, changed)

    def _apply_params(self, values: Mapping[str, Any], changed: set[str]) -> None:
        if "episode_timeout" in changed:
            self.world.tracker.timeout = values["episode_timeout"]
        if "command_timeout" in changed:
            self.driver.command_timeout = values["command_timeout"]
        if "cmd_vel_stamped" in changed:
            self._subscribe_cmd_vel()
        if "task" in changed and values["task"]:
            self._publish_status(self.world.set_instruction(values["task"]))

    def _subscribe_cmd_vel(self) -> None:
        if self.cmd_vel_subscription is not None:
            self.destroy_subscription(self.cmd_vel_subscription)
        kind = TwistStamped if self.params["cmd_vel_stamped"] else Twist
        self.cmd_vel_subscription = self.create_subscription(
            kind, "cmd_vel", self.on_twist, qos.COMMANDS
        )

    def destroy_node(self) -> None:
        self._running.clear()
        self._stepper.join()
        self.world.close()
        super().destroy_node()


def _next_due(due: float, now: float, rate_hz: float) -> float:
    """The next publication time: one period on, or one period from now after falling behind."""
    period = 1.0 / rate_hz
    return due + period if due + period > now else now + period


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
