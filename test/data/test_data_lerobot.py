"""LeRobotDataset v3: the export follows the documented layout, and export -> import -> bag ->
read gives the same frames and actions."""

import dataclasses
import json
import shutil

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vla_ros.data import sources
from vla_ros.data.bags import read_bag, write_bag
from vla_ros.data.lerobot import (
    FileLimits,
    LeRobotError,
    cameras,
    export_lerobot,
    read_lerobot,
)
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


def unique(items):
    return list(dict.fromkeys(items))


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
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    videos = [k for k, f in features.items() if f["dtype"] == "video"]
    # data: the files the episodes point to, one column per non-video feature, of the declared
    # type and shape; every file under data/ is one of them
    data_files = unique(
        info["data_path"].format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
        for e in episodes
    )
    assert sorted(str(p.relative_to(root)) for p in root.glob("data/*/*")) == sorted(data_files)
    data = pa.concat_tables([pq.read_table(root / name) for name in data_files])
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
    assert len(episodes) == info["total_episodes"]
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
    # video: one frame per row, at fps, of the declared size; each file holds its episodes'
    # frames one after another from its first frame on
    for key in videos:
        in_file: dict[str, int] = {}
        for episode in episodes:
            name = info["video_path"].format(
                video_key=key,
                chunk_index=episode[f"videos/{key}/chunk_index"],
                file_index=episode[f"videos/{key}/file_index"],
            )
            start = round(episode[f"videos/{key}/from_timestamp"] * info["fps"])
            assert start == in_file.get(name, 0), name
            in_file[name] = start + episode["length"]
        for name, count in in_file.items():
            with av.open(str(root / name)) as container:
                stream = container.streams.video[0]
                frames = list(container.decode(stream))
            assert len(frames) == count
            assert (frames[0].height, frames[0].width) == tuple(features[key]["shape"][:2])
            assert float(stream.average_rate) == info["fps"]
            times = [round(float(f.pts * stream.time_base) * info["fps"]) for f in frames]
            assert times == list(range(count))
        assert sum(in_file.values()) == info["total_frames"]
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


def test_big_exports_are_split_into_files_and_chunk_folders_as_lerobot_splits_them(
    dataset, tmp_path
):
    meta, episodes, _ = dataset
    # limits a single episode fills: every episode in a file of its own, two files per chunk
    tiny = FileLimits(data_mb=1e-4, video_mb=1e-4, chunks_size=2)
    root = tmp_path / "split"
    export_lerobot(meta, episodes, root, limits=tiny)
    info = check_v3_layout(root)
    assert (info["data_files_size_in_mb"], info["chunks_size"]) == (1e-4, 2)
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    places = [(row["data/chunk_index"], row["data/file_index"]) for row in rows]
    assert places == [(0, 0), (0, 1), (1, 0)]
    video = "videos/observation.images.camera"
    assert [(r[f"{video}/chunk_index"], r[f"{video}/file_index"]) for r in rows] == places
    assert all(row[f"{video}/from_timestamp"] == 0.0 for row in rows)
    _, imported = read_lerobot(root)
    for before, after in zip(episodes, imported, strict=True):
        np.testing.assert_allclose(after.actions, before.actions, rtol=1e-6)
        assert np.abs(after.images.astype(int) - before.images.astype(int)).mean() < 6.0
    # LeRobot's default limits keep these three small episodes in one file of each kind
    assert sorted(p.name for p in root.parent.glob("lerobot/data/*/*")) == ["file-000.parquet"]


def test_a_dataset_with_several_cameras_is_read_from_the_camera_asked_for(dataset, tmp_path):
    meta, episodes, root = dataset
    # a second camera: other pictures of the same episodes, grafted in as LeRobot lays it out
    rng = np.random.default_rng(11)
    wrist = [dataclasses.replace(e, images=blocky_pictures(rng, len(e))) for e in episodes]
    other = tmp_path / "other"
    export_lerobot(meta, wrist, other)
    camera, wrist_key = "observation.images.camera", "observation.images.wrist"
    shutil.copytree(other / "videos" / camera, root / "videos" / wrist_key)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"][wrist_key] = info["features"][camera]
    (root / "meta/info.json").write_text(json.dumps(info))
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet")
    for field in ("chunk_index", "file_index", "from_timestamp", "to_timestamp"):
        rows = rows.append_column(f"videos/{wrist_key}/{field}", rows[f"videos/{camera}/{field}"])
    pq.write_table(rows, root / "meta/episodes/chunk-000/file-000.parquet")

    assert cameras(root) == [camera, wrist_key]
    for key, expected in ((None, episodes), (wrist_key, wrist)):
        _, read = sources.load([root], None, image_key=key)
        for before, after in zip(expected, read, strict=True):
            assert np.abs(after.images.astype(int) - before.images.astype(int)).mean() < 6.0
    with pytest.raises(LeRobotError, match=r"its cameras: observation\.images\.camera, obs"):
        read_lerobot(root, image_key="observation.images.top")
