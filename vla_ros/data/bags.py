"""rosbag2 recordings (MCAP or sqlite3) as demonstration episodes, and episodes written as bags.

Reading: one pass over the bag in time order. Pictures are decoded and shrunk to the policy's
input size as they come (the camera node's `resize_rgb`), so a long bag never sits in memory at
camera resolution; joint states are put in one joint order; commands become action labels
(Twist -> linear.x, angular.z; Float64MultiArray -> its values; a one-point JointTrajectory ->
joint velocities). Episodes come from the /vla/episode marks `vla-ros record` writes, else from
the voice commands in the bag (the recorder's rules), else the whole bag is one episode of a task
the caller names. Then every episode is sampled at the control rate (`vla_ros.data.align`).
Times are the bag's log times (when the recorder received each message): the one clock every
topic shares, also for messages without a header (Twist, String).

Writing (`write_bag`): episodes as the same topics, at exact control periods, through the
rosbags writer and its typestore, so any ROS 2 tool reads the result.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.data import align
from vla_ros.data.marks import (
    EPISODE_TOPIC,
    EpisodeSpan,
    Event,
    Outcome,
    episode_spans,
    spans_from_commands,
)
from vla_ros.learn.dataset import DatasetMeta, Episode
from vla_ros.logic.images import decode_rgb, resize_rgb

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
STRING = "std_msgs/msg/String"
TWIST = "geometry_msgs/msg/Twist"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
FLOAT_ARRAY = "std_msgs/msg/Float64MultiArray"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
TWIST_ACTIONS = ("linear_x", "angular_z")  # the mobile scene's action channels
NANO = 1_000_000_000


@dataclass(frozen=True)
class BagTopics:
    """The topic names in a bag; each can be remapped (`--topic image=/front/image_raw`)."""

    image: str = "/camera/image_raw"
    joint_states: str = "/joint_states"
    voice: str = "/voice_command"
    cmd_vel: str = "/cmd_vel"
    joint_commands: str = "/joint_commands"
    joint_trajectory: str = "/joint_trajectory"
    episode: str = EPISODE_TOPIC

    def types(self) -> dict[str, tuple[str, ...]]:
        """Topic -> the message types accepted on it."""
        return {
            self.image: (IMAGE, COMPRESSED_IMAGE),
            self.joint_states: (JOINT_STATE,),
            self.voice: (STRING,),
            self.cmd_vel: (TWIST, TWIST_STAMPED),
            self.joint_commands: (FLOAT_ARRAY,),
            self.joint_trajectory: (TRAJECTORY,),
            self.episode: (STRING,),
        }

    def commands(self) -> tuple[str, ...]:
        return (self.cmd_vel, self.joint_commands, self.joint_trajectory)

    def remapped(self, remaps: Iterable[str]) -> BagTopics:
        """`name=/topic` pairs (names are this class's fields); ValueError for a bad one."""
        values = dict(self.__dict__)
        for remap in remaps:
            name, sep, topic = remap.partition("=")
            if not sep or name not in values or not topic.startswith("/"):
                raise ValueError(
                    f"remap {remap!r} is not NAME=/topic with NAME one of {', '.join(values)}"
                )
            values[name] = topic
        return BagTopics(**values)


class BagError(ValueError):
    """A bag that cannot give training data; the text names what is missing."""


def typestore() -> Any:
    """Message definitions for bags that carry none (older sqlite3 bags) and for writing."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


@dataclass
class BagEpisodes:
    """What a bag gives for training."""

    path: Path
    meta: DatasetMeta
    episodes: list[Episode]
    spans: list[EpisodeSpan]  # every episode in the bag, trained or not
    command_topic: str
    skipped: list[str] = field(default_factory=list)  # why episodes were left out


@dataclass
class _Streams:
    images: list[tuple[int, np.ndarray]] = field(default_factory=list)
    joints: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)
    commands: list[tuple[int, np.ndarray]] = field(default_factory=list)
    voice: list[tuple[int, str]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def read_bag(
    path: str | Path,
    image_size: tuple[int, int] = (64, 64),
    period: float = 0.1,
    topics: BagTopics | None = None,
    task: str | None = None,
    joint_names: Sequence[str] | None = None,
    hold: float = align.DEFAULT_HOLD,
) -> BagEpisodes:
    """The trainable episodes of one rosbag2 directory (see the module doc); BagError if the
    bag lacks a topic or type training needs."""
    from rosbags.highlevel import AnyReader

    path = Path(path)
    topics = topics or BagTopics()
    if not (path / "metadata.yaml").is_file():
        raise BagError(f"{path} is not a rosbag2 directory: it has no metadata.yaml")
    with AnyReader([path], default_typestore=typestore()) as reader:
        found = {c.topic: c for c in reader.connections}
        counts = {c.topic: c.msgcount for c in reader.connections}
        _require(path, found, counts, topics.image, topics.types()[topics.image], "camera pictures")
        _require(path, found, counts, topics.joint_states, (JOINT_STATE,), "joint states")
        command_topic = _command_topic(path, found, counts, topics)
        wanted = [topics.image, topics.joint_states, command_topic, topics.voice, topics.episode]
        for topic in wanted[3:]:
            if topic in found and found[topic].msgtype != STRING:
                raise BagError(f"{path}: {topic} is {found[topic].msgtype}, expected {STRING}")
        connections = [found[t] for t in wanted if t in found]
        streams = _Streams()
        names = tuple(joint_names) if joint_names else None
        kind = found[command_topic].msgtype
        for connection, stamp, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            topic = connection.topic
            if topic == topics.image:
                streams.images.append((stamp, resize_rgb(_pixels(msg), image_size)))
            elif topic == topics.joint_states:
                names = names or tuple(msg.name)
                positions = align.order_joints(msg.name, msg.position, names)
                if positions is not None:
                    velocities = align.order_joints(msg.name, msg.velocity, names)
                    streams.joints.append((stamp, positions, _finite(velocities, len(names))))
            elif topic == command_topic:
                measured = streams.joints[-1][1] if streams.joints else None
                action = _action(kind, msg, names, measured)
                if action is not None:
                    streams.commands.append((stamp, action))
            elif topic == topics.voice:
                streams.voice.append((stamp, msg.data))
            else:
                # someone else's String on the topic is not a mark
                with contextlib.suppress(ValueError):
                    streams.events.append(Event.from_json(msg.data, stamp / NANO))
        bag_end = reader.end_time / NANO
    if not streams.images or not streams.joints:
        raise BagError(f"{path}: no usable picture or joint state (all refused)")
    assert names is not None
    action_names = TWIST_ACTIONS if kind in (TWIST, TWIST_STAMPED) else names
    if not streams.commands:
        raise BagError(f"{path}: {command_topic} holds no command usable as an action")
    width = len(streams.commands[0][1])
    if width != len(action_names):
        raise BagError(
            f"{path}: commands on {command_topic} have {width} values, the joints "
            f"{len(action_names)} ({', '.join(action_names)}); give the joint names"
        )
    spans = _spans(path, streams, bag_end, task, topics)
    meta = DatasetMeta(
        scene=bag_custom_data(path).get("scene", "ros"),
        joint_names=names,
        action_names=action_names,
        image_size=tuple(image_size),
        control_dt=period,
    )
    result = BagEpisodes(path, meta, [], spans, command_topic)
    for span in spans:
        if not span.outcome.trained:
            result.skipped.append(f"episode {span.index}: marked {span.outcome.value}")
            continue
        episode = _sample(streams, span, period, hold)
        if episode is None:
            result.skipped.append(f"episode {span.index}: shorter than two control periods")
        else:
            result.episodes.append(episode)
    return result


def read_bags(
    paths: Sequence[str | Path],
    progress: Callable[[int, BagEpisodes], None] | None = None,
    **options: Any,
) -> tuple[DatasetMeta, list[Episode]]:
    """The episodes of several bags, which must agree on joints, actions and rate."""
    if not paths:
        raise BagError("no bag given")
    meta: DatasetMeta | None = None
    episodes: list[Episode] = []
    for number, path in enumerate(paths, 1):
        bag = read_bag(path, **options)
        if meta is not None and (bag.meta.joint_names, bag.meta.action_names) != (
            meta.joint_names,
            meta.action_names,
        ):
            raise BagError(
                f"{path}: joints {bag.meta.joint_names} / actions {bag.meta.action_names} differ "
                f"from the first bag's {meta.joint_names} / {meta.action_names}"
            )
        meta = meta or bag.meta
        episodes += bag.episodes
        if progress is not None:
            progress(number, bag)
    assert meta is not None
    return meta, episodes


def _require(
    path: Path,
    found: dict[str, Any],
    counts: dict[str, int],
    topic: str,
    types: Sequence[str],
    what: str,
) -> None:
    wanted = " or ".join(types)
    if topic not in found:
        raise BagError(
            f"{path} has no {topic} ({wanted}): training needs {what}; it has "
            f"{_listing(found) or 'no topics'} (remap with --topic)"
        )
    if found[topic].msgtype not in types:
        raise BagError(f"{path}: {topic} is {found[topic].msgtype}, training needs {wanted}")
    if counts.get(topic, 0) == 0:
        raise BagError(f"{path}: {topic} ({found[topic].msgtype}) holds no messages")


def _command_topic(
    path: Path, found: dict[str, Any], counts: dict[str, int], topics: BagTopics
) -> str:
    types = topics.types()
    for topic in topics.commands():
        if topic in found and counts.get(topic, 0) > 0:
            if found[topic].msgtype not in types[topic]:
                raise BagError(
                    f"{path}: {topic} is {found[topic].msgtype}, expected "
                    f"{' or '.join(types[topic])}"
                )
            return topic
    expected = ", ".join(f"{t} ({' or '.join(types[t])})" for t in topics.commands())
    raise BagError(
        f"{path} has no command messages: training needs what the robot was told, on "
        f"{expected}; it has {_listing(found) or 'no topics'} (remap with --topic)"
    )


def _listing(found: dict[str, Any]) -> str:
    return ", ".join(f"{t} ({c.msgtype})" for t, c in sorted(found.items()))


def bag_custom_data(path: Path) -> dict[str, str]:
    """vla_ros entries of the bag's metadata.yaml custom_data (absent in other bags); read from
    the file, which rosbags' reader does not expose."""
    import yaml

    info = yaml.safe_load((path / "metadata.yaml").read_text()) or {}
    custom = info.get("rosbag2_bagfile_information", {}).get("custom_data") or {}
    return {
        key.removeprefix("vla_ros."): str(value)
        for key, value in custom.items()
        if key.startswith("vla_ros.")
    }


def _pixels(msg: Any) -> np.ndarray:
    if hasattr(msg, "format"):  # CompressedImage
        from rosbags.image import compressed_image_to_cvimage

        return np.ascontiguousarray(compressed_image_to_cvimage(msg, "rgb8"))
    return decode_rgb(msg)


def _finite(values: np.ndarray | None, size: int) -> np.ndarray:
    """Velocities as numbers: ros2_control's NaN (and a missing field) mean unknown, taken as 0."""
    if values is None:
        return np.zeros(size)
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


def _action(
    kind: str, msg: Any, names: Sequence[str] | None, measured: np.ndarray | None
) -> np.ndarray | None:
    """A command message as an action label; None for one that cannot be used (a trajectory
    before any joint state, an empty trajectory, non-finite values)."""
    if kind in (TWIST, TWIST_STAMPED):
        twist = msg.twist if kind == TWIST_STAMPED else msg
        action = np.array([twist.linear.x, twist.angular.z])
    elif kind == FLOAT_ARRAY:
        action = np.asarray(msg.data, dtype=np.float64)
    else:
        if not msg.points or names is None or measured is None:
            return None
        point = msg.points[0]
        index = [names.index(n) for n in msg.joint_names if n in names]
        if len(index) != len(msg.joint_names):
            return None
        seconds = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
        velocities = align.trajectory_velocities(
            point.positions, point.velocities, seconds, measured[index]
        )
        action = np.zeros(len(names))
        action[index] = velocities
    return action if np.all(np.isfinite(action)) else None


def _spans(
    path: Path, streams: _Streams, bag_end: float, task: str | None, topics: BagTopics
) -> list[EpisodeSpan]:
    if streams.events:
        return episode_spans(streams.events, bag_end)
    if streams.voice:
        spans = spans_from_commands(((t / NANO, text) for t, text in streams.voice), bag_end)
        if spans:
            return spans
    if task:
        start = min(streams.images[0][0], streams.joints[0][0]) / NANO
        return [EpisodeSpan(1, task, start, bag_end + 1e-9, Outcome.UNMARKED, "end_of_bag")]
    raise BagError(
        f"{path} has no {topics.episode} marks and no task on {topics.voice}: nothing says "
        "what the robot was asked to do; record with vla-ros record, or give --task"
    )


def _sample(streams: _Streams, span: EpisodeSpan, period: float, hold: float) -> Episode | None:
    image_times = np.array([t for t, _ in streams.images], dtype=np.int64)
    joint_times = np.array([t for t, *_ in streams.joints], dtype=np.int64)
    command_times = np.array([t for t, _ in streams.commands], dtype=np.int64)
    # The first tick at which both a picture and a joint state have been seen.
    start = max(round(span.start * NANO), int(image_times[0]), int(joint_times[0]))
    at = align.ticks(start, round(span.end * NANO), period)
    if len(at) < 2:
        return None
    pictures = align.latest_at(image_times, at)
    joints = align.latest_at(joint_times, at)
    # Only the episode's own commands label it: the next take's first command may come within a
    # period of this one's end.
    inside = (command_times >= round(span.start * NANO)) & (command_times < round(span.end * NANO))
    command_values = np.array([v for _, v in streams.commands])[inside]
    return Episode(
        instruction=span.task,
        images=np.stack([streams.images[i][1] for i in pictures]),
        joint_positions=np.array([streams.joints[i][1] for i in joints], np.float32),
        joint_velocities=np.array([streams.joints[i][2] for i in joints], np.float32),
        actions=align.command_labels(command_times[inside], command_values, at, period, hold),
        success=span.outcome is not Outcome.FAILED,
    )


# -- writing ---------------------------------------------------------------------------------
def write_bag(
    path: str | Path,
    meta: DatasetMeta,
    episodes: Iterable[Episode],
    topics: BagTopics | None = None,
    storage: str = "mcap",
    gap: float = 1.0,
) -> int:
    """Episodes as a rosbag2 directory: per step a picture, a joint state and the command at the
    same instant; the task on the voice topic and the marks on /vla/episode. Commands are Twist
    for the mobile base's (linear_x, angular_z) actions, else Float64MultiArray in joint order.
    Returns the number of episodes written."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    topics = topics or BagTopics()
    store = typestore()
    twist = tuple(meta.action_names) == TWIST_ACTIONS
    command_topic, command_type = (
        (topics.cmd_vel, TWIST) if twist else (topics.joint_commands, FLOAT_ARRAY)
    )
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    types = Messages(store)
    period = round(meta.control_dt * NANO)
    with Writer(Path(path), version=9, storage_plugin=plugin) as writer:
        writer.set_custom_data("vla_ros.scene", meta.scene)
        connections = {
            topic: writer.add_connection(topic, msgtype, typestore=store)
            for topic, msgtype in (
                (topics.image, IMAGE),
                (topics.joint_states, JOINT_STATE),
                (command_topic, command_type),
                (topics.voice, STRING),
                (topics.episode, STRING),
            )
        }

        def put(topic: str, msgtype: str, msg: Any, time: int) -> None:
            writer.write(connections[topic], time, store.serialize_cdr(msg, msgtype))

        now = NANO  # bags start at t = 1 s: a zero stamp reads as "unset" to ROS tools
        count = 0
        for count, episode in enumerate(episodes, 1):
            put(topics.voice, STRING, types.String(data=episode.instruction), now)
            start = Event("start", count, 0.0, task=episode.instruction)
            put(topics.episode, STRING, types.String(data=start.to_json()), now)
            for step in range(len(episode)):
                t = now + step * period
                header = types.header(t, "camera")
                image = episode.images[step]
                put(topics.image, IMAGE, types.image(header, image), t)
                put(
                    topics.joint_states,
                    JOINT_STATE,
                    types.joint_state(
                        types.header(t, ""),
                        meta.joint_names,
                        episode.joint_positions[step],
                        episode.joint_velocities[step],
                    ),
                    t,
                )
                action = episode.actions[step]
                command = types.twist(action) if twist else types.float_array(action)
                put(command_topic, command_type, command, t)
            now += len(episode) * period
            outcome = Outcome.SUCCEEDED if episode.success else Outcome.FAILED
            end = Event("end", count, 0.0, reason="end_of_take", outcome=outcome.value)
            put(topics.episode, STRING, types.String(data=end.to_json()), now)
            now += round(gap * NANO)
        writer.set_custom_data("vla_ros.episodes", json.dumps(count))
    return count


class Messages:
    """Builders of the typestore's message classes."""

    def __init__(self, store: Any) -> None:
        self._types = store.types
        self.String = self._types[STRING]

    def header(self, t: int, frame: str) -> Any:
        time = self._types["builtin_interfaces/msg/Time"](sec=t // NANO, nanosec=t % NANO)
        return self._types["std_msgs/msg/Header"](stamp=time, frame_id=frame)

    def image(self, header: Any, pixels: np.ndarray) -> Any:
        height, width = pixels.shape[:2]
        return self._types[IMAGE](
            header=header,
            height=height,
            width=width,
            encoding="rgb8",
            is_bigendian=0,
            step=width * 3,
            data=np.ascontiguousarray(pixels, np.uint8).reshape(-1),
        )

    def joint_state(
        self, header: Any, names: Sequence[str], positions: np.ndarray, velocities: np.ndarray
    ) -> Any:
        return self._types[JOINT_STATE](
            header=header,
            name=list(names),
            position=np.asarray(positions, np.float64),
            velocity=np.asarray(velocities, np.float64),
            effort=np.zeros(0, np.float64),
        )

    def twist(self, action: np.ndarray) -> Any:
        vector = self._types["geometry_msgs/msg/Vector3"]
        return self._types[TWIST](
            linear=vector(x=float(action[0]), y=0.0, z=0.0),
            angular=vector(x=0.0, y=0.0, z=float(action[1])),
        )

    def float_array(self, action: np.ndarray) -> Any:
        layout = self._types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
        return self._types[FLOAT_ARRAY](layout=layout, data=np.asarray(action, np.float64))
