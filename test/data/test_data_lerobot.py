"""LeRobotDataset v3: the export follows the documented layout, and export -> import -> bag ->
read gives the same frames and actions."""

import json

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vla_ros.data.bags import read_bag, write_bag
from vla_ros.data.lerobot import LeRobotError, export_lerobot, read_lerobot
from vla_ros.learn.dataset import DatasetMeta, Episode

SIZE = (48, 64)
ARROW = {"float32": pa.float32(), "int64": pa.int64()}


def blocky_pictures(rng, count):
    """Flat 8x8 blocks: what a video codec keeps (noise would be smeared by chroma subsampling)."""
    small = rng.integers(0, 256, (count, SIZE[0] // 8, SIZE[1] // 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 8, axis=1), 8, axis=2)


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(3)
    meta = DatasetMeta("arm", ("j1", "j2", "j3"), ("j1", "j2", "j3"), SIZE, 0.1)
    episodes = [
        Episode(
            task,
            blocky_pictures(rng, n),
            rng.normal(size=(n, 3)).astype(np.float32),
            rng.normal(size=(n, 3)).astype(np.float32),
            rng.normal(size=(n, 3)).astype(np.float32),
            success=True,
        )
        for task, n in (
            ("reach the red cube", 6),
            ("reach the blue ball", 9),
            ("reach the red cube", 4),
        )
    ]
    root = tmp_path / "lerobot"
    assert export_lerobot(meta, episodes, root) == 3
    return meta, episodes, root


def check_v3_layout(root):
    """LeRobot's documented v3.0 layout, checked from the files alone."""
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    for key, kind in (
        ("fps", int),
        ("total_episodes", int),
        ("total_frames", int),
        ("total_tasks", int),
        ("chunks_size", int),
        ("data_path", str),
        ("video_path", str),
        ("features", dict),
        ("splits", dict),
    ):
        assert isinstance(info[key], kind), key
    features = info["features"]
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert features[name]["shape"] == [1]
    assert features["timestamp"]["dtype"] == "float32"
    # data: one column per non-video feature, of the declared type and shape
    data_file = root / info["data_path"].format(chunk_index=0, file_index=0)
    data = pq.read_table(data_file)
    for name, feature in features.items():
        if feature["dtype"] == "video":
            assert name.startswith("observation.images.")
            for field in (
                "video.height",
                "video.width",
                "video.codec",
                "video.pix_fmt",
                "video.fps",
            ):
                assert field in feature["info"]
            continue
        column = data.schema.field(name).type
        if feature["shape"] == [1]:
            assert column == ARROW[feature["dtype"]], name
        else:
            assert column == pa.list_(ARROW[feature["dtype"]], feature["shape"][0]), name
            assert len(feature["names"]) == feature["shape"][0]
    assert data.num_rows == info["total_frames"]
    assert data.column("index").to_pylist() == list(range(info["total_frames"]))
    # episodes: where each one's rows and frames are
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert len(episodes) == info["total_episodes"]
    videos = [k for k, f in features.items() if f["dtype"] == "video"]
    end = 0
    for number, episode in enumerate(episodes):
        assert episode["episode_index"] == number
        assert episode["dataset_from_index"] == end
        end = episode["dataset_to_index"]
        assert end - episode["dataset_from_index"] == episode["length"]
        assert isinstance(episode["tasks"], list) and episode["tasks"]
        for key in ("data/chunk_index", "data/file_index", "meta/episodes/chunk_index"):
            assert isinstance(episode[key], int)
        for key in videos:
            start = episode[f"videos/{key}/from_timestamp"]
            stop = episode[f"videos/{key}/to_timestamp"]
            assert stop - start == pytest.approx(episode["length"] / info["fps"])
    assert end == info["total_frames"]
    # tasks: the text is the (pandas) index, task_index a column
    tasks = pq.read_table(root / "meta/tasks.parquet")
    pandas_index = json.loads(tasks.schema.metadata[b"pandas"])["index_columns"]
    assert len(pandas_index) == 1 and tasks.num_rows == info["total_tasks"]
    assert sorted(tasks.column("task_index").to_pylist()) == list(range(info["total_tasks"]))
    # video: one frame per row, at fps, of the declared size
    for key in videos:
        path = root / info["video_path"].format(video_key=key, chunk_index=0, file_index=0)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = list(container.decode(stream))
        assert len(frames) == info["total_frames"]
        assert (frames[0].height, frames[0].width) == tuple(features[key]["shape"][:2])
        assert float(stream.average_rate) == info["fps"]
        assert [round(float(f.pts * stream.time_base) * info["fps"]) for f in frames] == list(
            range(info["total_frames"])
        )
    stats = json.loads((root / "meta/stats.json").read_text())
    assert {"min", "max", "mean", "std", "count"} <= set(stats["action"])
    return info


def test_the_export_follows_the_v3_layout(dataset):
    meta, _, root = dataset
    info = check_v3_layout(root)
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"], info["fps"]) == (
        3,
        19,
        2,
        10,
    )
    assert info["features"]["action"]["names"] == list(meta.action_names)


def test_export_import_and_back_through_a_bag_keeps_frames_and_actions(dataset, tmp_path):
    meta, episodes, root = dataset
    imported_meta, imported = read_lerobot(root)
    assert imported_meta.joint_names == meta.joint_names
    assert imported_meta.image_size == SIZE and imported_meta.control_dt == pytest.approx(0.1)
    write_bag(tmp_path / "bag", imported_meta, imported)
    bag = read_bag(tmp_path / "bag", image_size=SIZE)
    assert len(bag.episodes) == len(episodes)
    for before, after in zip(episodes, bag.episodes, strict=True):
        assert after.instruction == before.instruction
        assert len(after) == len(before)
        np.testing.assert_allclose(after.actions, before.actions, rtol=1e-6)
        np.testing.assert_allclose(after.joint_positions, before.joint_positions, rtol=1e-6)
        np.testing.assert_allclose(after.joint_velocities, before.joint_velocities, rtol=1e-6)
        # H.264 in yuv420p is not lossless: random saturated colours lose about 4 grey levels
        # in the RGB -> YUV -> RGB trip (simulator pictures: 1.4 on average)
        error = np.abs(after.images.astype(int) - before.images.astype(int))
        assert error.mean() < 6.0, error.mean()


def test_a_dataset_from_another_version_or_missing_features_is_refused(dataset):
    _, _, root = dataset
    info_path = root / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["codebase_version"] = "v2.1"
    info_path.write_text(json.dumps(info))
    with pytest.raises(LeRobotError, match=r"v2\.1 dataset; this reads v3"):
        read_lerobot(root)
    info["codebase_version"] = "v3.0"
    del info["features"]["action"]
    info_path.write_text(json.dumps(info))
    with pytest.raises(LeRobotError, match="no action"):
        read_lerobot(root)


def test_an_export_never_overwrites(dataset):
    meta, episodes, root = dataset
    with pytest.raises(LeRobotError, match="exists"):
        export_lerobot(meta, episodes, root)
