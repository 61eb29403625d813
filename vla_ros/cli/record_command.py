"""`vla-ros record`: demonstrations from a live ROS graph into a rosbag2 (MCAP) directory.

Messages are taken serialized (raw subscriptions) and written as they are, through the rosbags
writer: nothing is decoded and encoded again, which is what lets two cores keep up with a camera
(see `vla-ros bench --record`). Episodes follow the voice commands, /vla/stop (as the safety node
reports it on /diagnostics), a time limit and keys; their marks go into the bag on /vla/episode
(`vla_ros.data.marks`). Ctrl-C, SIGTERM and SIGHUP end the recording cleanly: the episode in
progress is closed and the bag is finished, so it reads back.
"""

from __future__ import annotations

import argparse
import datetime
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rosbags.rosbag2 import StoragePlugin, Writer
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from vla_ros.data import bags
from vla_ros.data.marks import KEY_HELP, KEYS, EpisodeTracker, Event, Key
from vla_ros.data.recording import RecordingStats, live_line, summary
from vla_ros.ros.messages import cdr_string_bytes

# The safety node's stop reason for the service (relative name: it may run in a namespace).
STOP_SERVICE_REPORT = "vla/stop called"
SAFETY_STATUS = "vla_ros/safety_node"
LINE_PERIOD = 0.5  # seconds between live lines on a terminal (5 s into a log)


def default_path() -> Path:
    return Path("bags") / datetime.datetime.now().strftime("rec_%Y%m%d_%H%M%S")


def run(args: argparse.Namespace) -> int:
    try:
        topics = bags.BagTopics().remapped(args.topic)
    except ValueError as error:
        print(f"vla-ros record: error: {error}", file=sys.stderr)
        return 2
    out: Path = args.out or default_path()
    if out.exists():
        print(f"vla-ros record: error: {out} exists; give a new --out", file=sys.stderr)
        return 2
    return _record(args, topics, out)


class _Keys:
    """Keys from a terminal (no Enter needed) or lines from a pipe, without blocking."""

    def __init__(self, enabled: bool) -> None:
        self.fd = sys.stdin.fileno() if enabled and sys.stdin and not sys.stdin.closed else None
        self._saved: Any = None
        if self.fd is not None and os.isatty(self.fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)

    def read(self) -> list[str]:
        if self.fd is None or not select.select([self.fd], [], [], 0)[0]:
            return []
        data = os.read(self.fd, 64).decode(errors="replace")
        if not data:  # end of a pipe: no more keys
            self.fd = None
            return []
        if self._saved is None:  # lines from a pipe: "s", "f", "r", "q" or an empty line
            return [line[:1] or "\n" for line in data.splitlines()]
        return [data] if data.startswith("\x1b[") else list(data)

    def close(self) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


def _record(args: argparse.Namespace, topics: bags.BagTopics, out: Path) -> int:
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    writer = Writer(
        out,
        version=9,
        storage_plugin=StoragePlugin.SQLITE3 if args.storage == "sqlite3" else StoragePlugin.MCAP,
    )
    writer.open()
    tracker = EpisodeTracker(time_limit=args.time_limit)
    stats = RecordingStats()
    keys = _Keys(enabled=not args.no_keys)
    interactive = sys.stderr.isatty()
    executor = SingleThreadedExecutor(context=context)
    recorder = _Recorder(writer, bags.typestore(), topics, tracker, stats, args, context=context)
    executor.add_node(recorder)
    started = time.monotonic()
    print(
        f"vla-ros record: recording to {out} ({args.storage}); {KEY_HELP}; Ctrl-C ends",
        file=sys.stderr,
        flush=True,
    )
    last_line = 0.0
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
            now = recorder.seconds()
            for key in keys.read():
                action = KEYS.get(key)
                if action is Key.QUIT:
                    stop.set()
                elif action is not None:
                    recorder.emit(tracker.key(action, now))
            recorder.emit(tracker.tick(now))
            if args.episodes and tracker.count - tracker.active >= args.episodes:
                stop.set()
            if args.duration and time.monotonic() - started >= args.duration:
                stop.set()
            wall = time.monotonic()
            if wall - last_line >= (LINE_PERIOD if interactive else 5.0):
                last_line = wall
                line = live_line(stats, tracker, wall, started, now)
                print(
                    f"\r\033[K{line}" if interactive else line,
                    end="" if interactive else "\n",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        recorder.emit(tracker.shutdown(recorder.seconds()))
        writer.set_custom_data("vla_ros.scene", args.scene or "ros")
        writer.set_custom_data("vla_ros.episodes", str(tracker.count))
        writer.close()
        keys.close()
        executor.shutdown()
        recorder.destroy_node()
        rclpy.try_shutdown(context=context)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if interactive:
            print(file=sys.stderr)
    print(summary(stats, tracker, str(out), time.monotonic() - started), flush=True)
    return 0


class _Recorder(Node):
    """Subscribes to every topic of a demonstration and writes what arrives, as it arrives."""

    def __init__(
        self,
        writer: Writer,
        store: Any,
        topics: bags.BagTopics,
        tracker: EpisodeTracker,
        stats: RecordingStats,
        args: argparse.Namespace,
        **options: Any,
    ) -> None:
        super().__init__(
            "vla_ros_recorder",
            parameter_overrides=[Parameter("use_sim_time", value=args.use_sim_time)],
            **options,
        )
        self.writer, self.store, self.stats, self.tracker = writer, store, stats, tracker
        self.topics = topics
        self.connections: dict[str, Any] = {}
        self._stopped_by_service = False
        # Commands reliable, as they are sent. Sensors as their publishers offer them (as
        # `ros2 bag record` does): reliable when every publisher is, so lost fragments of a
        # large picture are sent again; best effort otherwise (it matches either kind). Room
        # for a second of a fast camera should a write stall.
        commands = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE
        )
        cmd_vel_type = TwistStamped if args.cmd_vel_stamped else Twist
        cmd_vel_name = bags.TWIST_STAMPED if args.cmd_vel_stamped else bags.TWIST
        self._pending_sensors: dict[str, type] = {}
        for topic, msg_type, type_name, extra in (
            (topics.image, Image, bags.IMAGE, None),
            (topics.joint_states, JointState, bags.JOINT_STATE, None),
            (topics.voice, String, bags.STRING, self._on_voice),
            (topics.cmd_vel, cmd_vel_type, cmd_vel_name, None),
            (topics.joint_commands, Float64MultiArray, bags.FLOAT_ARRAY, None),
            (topics.joint_trajectory, JointTrajectory, bags.TRAJECTORY, None),
        ):
            self.connections[topic] = writer.add_connection(topic, type_name, typestore=store)
            if msg_type in (Image, JointState):
                self._pending_sensors[topic] = msg_type
            else:
                self.create_subscription(
                    msg_type, topic, self._writer_for(topic, extra), commands, raw=True
                )
        self._discovery = self.create_timer(0.1, self._subscribe_sensors)
        self.connections[topics.episode] = writer.add_connection(
            topics.episode, bags.STRING, typestore=store
        )
        self._string = store.types[bags.STRING]
        self.clear = "\r\033[K" if sys.stderr.isatty() else ""  # over the live line
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _subscribe_sensors(self) -> None:
        """Subscribe to each sensor topic once its publishers are known, with their QoS."""
        for topic, msg_type in list(self._pending_sensors.items()):
            offered = self.get_publishers_info_by_topic(topic)
            if not offered:
                continue
            reliable = all(
                info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in offered
            )
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=100,
                reliability=ReliabilityPolicy.RELIABLE
                if reliable
                else ReliabilityPolicy.BEST_EFFORT,
            )
            self.create_subscription(msg_type, topic, self._writer_for(topic, None), qos, raw=True)
            del self._pending_sensors[topic]
        if not self._pending_sensors:
            self._discovery.cancel()

    def seconds(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _writer_for(
        self, topic: str, extra: Callable[[bytes, float], None] | None
    ) -> Callable[[bytes], None]:
        connection = self.connections[topic]

        def write(raw: bytes) -> None:
            stamp = self.get_clock().now().nanoseconds
            self.writer.write(connection, stamp, raw)
            self.stats.add(topic, time.monotonic(), len(raw))
            if extra is not None:
                extra(raw, stamp * 1e-9)

        return write

    def _on_voice(self, raw: bytes, now: float) -> None:
        try:
            text = cdr_string_bytes(raw)
        except ValueError:
            return
        self.emit(self.tracker.command(text, now))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        """/vla/stop is a service of the safety node, not a topic: its call shows as the stop
        reason the safety node reports. Only the report's first appearance ends an episode, so
        a stale report cannot end the next one."""
        for status in msg.status:
            if status.name == SAFETY_STATUS:
                stopped = STOP_SERVICE_REPORT in status.message
                if stopped and not self._stopped_by_service:
                    self.emit(self.tracker.stop_service(self.seconds()))
                self._stopped_by_service = stopped

    def emit(self, events: list[Event]) -> None:
        """Episode marks into the bag, and a line each on the terminal."""
        for event in events:
            stamp = round(event.time * 1e9)
            data = self.store.serialize_cdr(self._string(data=event.to_json()), bags.STRING)
            self.writer.write(self.connections[self.topics.episode], stamp, data)
            self.stats.add(self.topics.episode, time.monotonic(), len(data))
            detail = event.task or f"{event.reason} {event.outcome}".strip()
            print(
                f"{self.clear}[episode {event.episode}] {event.kind}: {detail}",
                file=sys.stderr,
                flush=True,
            )
