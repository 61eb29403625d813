"""rosbag2 directories as training episodes, and episodes written as bags (through rosbags)."""

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from vla_ros.data.bags import (
    FLOAT_ARRAY,
    IMAGE,
    JOINT_STATE,
    STRING,
    TRAJECTORY,
    BagError,
    BagTopics,
    Messages,
    read_bag,
    read_bags,
    typestore,
    write_bag,
)
from vla_ros.data.marks import Event
from vla_ros.learn.dataset import DatasetMeta, Episode

SIZE = (16, 16)
NANO = 1_000_000_000


def episodes(actions=("linear_x", "angular_z"), lengths=(7, 5), seed=0):
    rng = np.random.default_rng(seed)
    meta = DatasetMeta("mobile", ("left", "right"), actions, SIZE, 0.1)
    made = [
        Episode(
            f"go to the {colour} cube",
            rng.integers(0, 255, (n, *SIZE, 3), dtype=np.uint8),
            rng.normal(size=(n, 2)).astype(np.float32),
            rng.normal(size=(n, 2)).astype(np.float32),
            rng.normal(size=(n, len(actions))).astype(np.float32),
            success=colour != "green",
        )
        for colour, n in zip(("red", "blue", "green"), lengths, strict=False)
    ]
    return meta, made


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("actions", [("linear_x", "angular_z"), ("left", "right")])
def test_episodes_written_as_a_bag_read_back_the_same(tmp_path, storage, actions):
    meta, written = episodes(actions)
    assert write_bag(tmp_path / "bag", meta, written, storage=storage) == 2
    bag = read_bag(tmp_path / "bag", image_size=SIZE)
    assert bag.command_topic == ("/cmd_vel" if actions[0] == "linear_x" else "/joint_commands")
    assert (bag.meta.joint_names, bag.meta.action_names, bag.meta.scene) == (
        ("left", "right"),
        actions,
        "mobile",
    )
    assert len(bag.episodes) == 2
    for before, after in zip(written, bag.episodes, strict=True):
        assert after.instruction == before.instruction
        np.testing.assert_array_equal(after.images, before.images)
        np.testing.assert_allclose(after.actions, before.actions, rtol=1e-6)
        np.testing.assert_allclose(after.joint_positions, before.joint_positions, rtol=1e-6)
        np.testing.assert_allclose(after.joint_velocities, before.joint_velocities, rtol=1e-6)


def test_failed_episodes_stay_in_the_bag_but_out_of_training(tmp_path):
    meta, written = episodes(lengths=(4, 4, 4))
    write_bag(tmp_path / "bag", meta, written)
    bag = read_bag(tmp_path / "bag", image_size=SIZE)
    assert [s.outcome.value for s in bag.spans] == ["succeeded", "succeeded", "failed"]
    assert len(bag.episodes) == 2 and "marked failed" in bag.skipped[0]


def test_bags_of_different_robots_are_not_mixed(tmp_path):
    write_bag(tmp_path / "a", *episodes())
    write_bag(tmp_path / "b", *episodes(actions=("left", "right")))
    with pytest.raises(BagError, match="differ from the first bag"):
        read_bags([tmp_path / "a", tmp_path / "b"], image_size=SIZE)


def _bag(path, topics, storage=StoragePlugin.MCAP):
    """A bag with the given (topic, type, [(time_ns, message)]) written by rosbags itself."""
    store = typestore()
    with Writer(path, version=9, storage_plugin=storage) as writer:
        for topic, msgtype, messages in topics:
            connection = writer.add_connection(topic, msgtype, typestore=store)
            for time, msg in messages:
                writer.write(connection, time, store.serialize_cdr(msg, msgtype))
    return path


def _streams(steps=6):
    messages = Messages(typestore())
    times = [NANO + i * NANO // 10 for i in range(steps)]
    image = np.zeros((*SIZE, 3), np.uint8)
    return (
        messages,
        times,
        {
            "image": (
                "/camera/image_raw",
                IMAGE,
                [(t, messages.image(messages.header(t, ""), image)) for t in times],
            ),
            "joints": (
                "/joint_states",
                JOINT_STATE,
                [
                    (
                        t,
                        messages.joint_state(
                            messages.header(t, ""), ["a", "b"], np.array([0.0, 1.0]), np.zeros(2)
                        ),
                    )
                    for t in times
                ],
            ),
            "commands": (
                "/joint_commands",
                FLOAT_ARRAY,
                [(t, messages.float_array(np.array([0.5, -0.5]))) for t in times],
            ),
            "voice": (
                "/voice_command",
                STRING,
                [(times[0], messages.String(data="go to the red cube"))],
            ),
        },
    )


@pytest.mark.parametrize(
    ("left_out", "named"),
    [
        ("image", "/camera/image_raw (sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage)"),
        ("joints", "/joint_states (sensor_msgs/msg/JointState)"),
        ("commands", "has no command messages"),
        ("voice", "no task on /voice_command"),
    ],
)
def test_a_bag_missing_what_training_needs_says_what(tmp_path, left_out, named):
    _, _, streams = _streams()
    del streams[left_out]
    path = _bag(tmp_path / "bag", streams.values())
    with pytest.raises(BagError, match=r"training needs|nothing says") as error:
        read_bag(path, image_size=SIZE)
    assert named in str(error.value)
    assert str(path) in str(error.value)


def test_a_topic_of_the_wrong_type_is_named_with_both_types(tmp_path):
    messages, times, streams = _streams()
    streams["joints"] = ("/joint_states", STRING, [(times[0], messages.String(data="x"))])
    with pytest.raises(BagError, match="/joint_states is std_msgs/msg/String, training needs"):
        read_bag(_bag(tmp_path / "bag", streams.values()), image_size=SIZE)


def test_a_bag_without_a_task_trains_with_one_given(tmp_path):
    _, _, streams = _streams()
    del streams["voice"]
    bag = read_bag(_bag(tmp_path / "bag", streams.values()), image_size=SIZE, task="fetch")
    (episode,) = bag.episodes
    assert episode.instruction == "fetch" and len(episode) == 6


def test_remapped_topics_and_sqlite3_bags_from_other_recorders(tmp_path):
    _, _, streams = _streams()
    _, msgtype, items = streams["image"]
    streams["image"] = ("/front/rgb", msgtype, items)
    path = _bag(tmp_path / "bag", streams.values(), storage=StoragePlugin.SQLITE3)
    topics = BagTopics().remapped(["image=/front/rgb"])
    bag = read_bag(path, image_size=SIZE, topics=topics)
    assert len(bag.episodes) == 1
    np.testing.assert_allclose(bag.episodes[0].actions, [[0.5, -0.5]] * 6)
    with pytest.raises(ValueError, match="NAME=/topic"):
        BagTopics().remapped(["camera=/x"])


def test_trajectory_points_are_labelled_as_joint_velocities(tmp_path):
    store = typestore()
    types = store.types
    messages, times, streams = _streams()
    duration = types["builtin_interfaces/msg/Duration"](sec=2, nanosec=0)
    point = types["trajectory_msgs/msg/JointTrajectoryPoint"](
        positions=np.array([1.0, 1.0]),
        velocities=np.zeros(0),
        accelerations=np.zeros(0),
        effort=np.zeros(0),
        time_from_start=duration,
    )
    trajectory = types[TRAJECTORY](
        header=messages.header(0, ""), joint_names=["b", "a"], points=[point]
    )
    del streams["commands"]
    streams["trajectory"] = ("/joint_trajectory", TRAJECTORY, [(t + 1, trajectory) for t in times])
    bag = read_bag(_bag(tmp_path / "bag", streams.values()), image_size=SIZE)
    # measured a = 0, b = 1; the point asks b -> 1, a -> 1 in 2 s
    np.testing.assert_allclose(bag.episodes[0].actions[0], [0.5, 0.0])


def test_marks_with_an_open_episode_end_at_the_end_of_the_bag(tmp_path):
    messages, times, streams = _streams()
    start = Event("start", 1, 0.0, task="reach the ball")
    streams["marks"] = ("/vla/episode", STRING, [(times[2], messages.String(data=start.to_json()))])
    (episode,) = read_bag(_bag(tmp_path / "bag", streams.values()), image_size=SIZE).episodes
    assert episode.instruction == "reach the ball" and len(episode) == 4
