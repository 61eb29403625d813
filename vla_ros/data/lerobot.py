"""LeRobotDataset v3.0, written and read with pyarrow and PyAV (LeRobot's own library pins torch
and numpy versions this package cannot share; docs/data.md says how compatibility is checked).

The layout (LeRobot's documented v3 format):

    meta/info.json                              fps, features, counts, path templates
    meta/tasks.parquet                          task text (the index) -> task_index
    meta/stats.json                             min / max / mean / std / count per feature
    meta/episodes/chunk-000/file-000.parquet    one row per episode: length, tasks, where its
                                                rows and video frames are
    data/chunk-000/file-000.parquet             one row per frame
    videos/observation.images.camera/chunk-000/file-000.mp4    every episode's frames, in turn

Our episodes map to it as: pictures -> observation.images.camera (H.264 video), joint positions
-> observation.state, joint velocities -> observation.velocity, action -> action (names = the
channels), instruction -> task. Reading takes any v3 dataset: the first video (or image) feature,
observation.state, action, and observation.velocity when there is one (zeros otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.learn.dataset import DatasetMeta, Episode
from vla_ros.logic.images import resize_rgb

CODEBASE_VERSION = "v3.0"
CAMERA_KEY = "observation.images.camera"
STATE_KEY = "observation.state"
VELOCITY_KEY = "observation.velocity"
ACTION_KEY = "action"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
TASKS_PATH = "meta/tasks.parquet"
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
CODEC = "h264"  # libx264: in PyAV's wheels, fast on a CPU, decoded everywhere
CRF = "12"  # near-lossless: the pictures are small and exact colours name the targets


class LeRobotError(ValueError):
    """A folder that is not a LeRobot v3 dataset this code can read; the text says why."""


def _scalar(dtype: str) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [1], "names": None}


def features(meta: DatasetMeta, fps: int) -> dict[str, Any]:
    height, width = meta.image_size
    joints, actions = len(meta.joint_names), len(meta.action_names)
    return {
        CAMERA_KEY: {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": height,
                "video.width": width,
                "video.codec": CODEC,
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        },
        STATE_KEY: {"dtype": "float32", "shape": [joints], "names": list(meta.joint_names)},
        VELOCITY_KEY: {"dtype": "float32", "shape": [joints], "names": list(meta.joint_names)},
        ACTION_KEY: {"dtype": "float32", "shape": [actions], "names": list(meta.action_names)},
        "timestamp": _scalar("float32"),
        "frame_index": _scalar("int64"),
        "episode_index": _scalar("int64"),
        "index": _scalar("int64"),
        "task_index": _scalar("int64"),
    }


def export_lerobot(
    meta: DatasetMeta,
    episodes: Iterable[Episode],
    root: str | Path,
    robot_type: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the episodes as a v3 dataset in `root` (created; must not exist). Returns the
    number of episodes. The frame rate is the control rate, which must be a whole number of Hz
    (LeRobot's fps is an integer)."""
    import av
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    fps = round(1.0 / meta.control_dt)
    if abs(fps * meta.control_dt - 1.0) > 1e-6:
        raise LeRobotError(f"control period {meta.control_dt} s is not a whole number of Hz")
    if root.exists():
        raise LeRobotError(f"{root} exists; not writing a dataset over it")
    height, width = meta.image_size
    if height % 2 or width % 2:
        raise LeRobotError(f"yuv420p video needs even sizes, the pictures are {width}x{height}")
    video_file = root / VIDEO_PATH.format(video_key=CAMERA_KEY, chunk_index=0, file_index=0)
    video_file.parent.mkdir(parents=True)
    columns: dict[str, list[Any]] = {key: [] for key in (STATE_KEY, VELOCITY_KEY, ACTION_KEY)}
    columns.update({key: [] for key in INDEX_FEATURES})
    rows: list[dict[str, Any]] = []
    tasks: dict[str, int] = {}
    frames = 0
    with av.open(str(video_file), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # A key frame every 2 frames, as LeRobot encodes: seeking to any frame stays cheap.
        stream.options = {"crf": CRF, "g": "2", "preset": "fast"}
        stream.codec_context.time_base = av_fraction(1, fps)
        for number, episode in enumerate(episodes):
            count = len(episode)
            task = tasks.setdefault(episode.instruction, len(tasks))
            for step in range(count):
                frame = av.VideoFrame.from_ndarray(episode.images[step], format="rgb24")
                frame.pts = frames + step
                frame.time_base = av_fraction(1, fps)
                container.mux(stream.encode(frame))
            columns[STATE_KEY] += list(episode.joint_positions.astype(np.float32))
            columns[VELOCITY_KEY] += list(episode.joint_velocities.astype(np.float32))
            columns[ACTION_KEY] += list(episode.actions.astype(np.float32))
            columns["timestamp"] += (np.arange(count, dtype=np.float32) / fps).tolist()
            columns["frame_index"] += list(range(count))
            columns["episode_index"] += [number] * count
            columns["index"] += list(range(frames, frames + count))
            columns["task_index"] += [task] * count
            rows.append(
                {
                    "episode_index": number,
                    "tasks": [episode.instruction],
                    "length": count,
                    "data/chunk_index": 0,
                    "data/file_index": 0,
                    "dataset_from_index": frames,
                    "dataset_to_index": frames + count,
                    f"videos/{CAMERA_KEY}/chunk_index": 0,
                    f"videos/{CAMERA_KEY}/file_index": 0,
                    f"videos/{CAMERA_KEY}/from_timestamp": frames / fps,
                    f"videos/{CAMERA_KEY}/to_timestamp": (frames + count) / fps,
                    "meta/episodes/chunk_index": 0,
                    "meta/episodes/file_index": 0,
                    "success": bool(episode.success),
                }
            )
            frames += count
            if progress is not None:
                progress(number + 1)
        container.mux(stream.encode(None))
    if not rows:
        raise LeRobotError("no episodes to export")

    def vectors(key: str, size: int) -> pa.Array:
        flat = np.concatenate(columns[key]).astype(np.float32) if columns[key] else []
        return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), size)

    data = pa.table(
        {
            STATE_KEY: vectors(STATE_KEY, len(meta.joint_names)),
            VELOCITY_KEY: vectors(VELOCITY_KEY, len(meta.joint_names)),
            ACTION_KEY: vectors(ACTION_KEY, len(meta.action_names)),
            "timestamp": pa.array(columns["timestamp"], pa.float32()),
            **{key: pa.array(columns[key], pa.int64()) for key in INDEX_FEATURES[1:]},
        }
    )
    data_file = root / DATA_PATH.format(chunk_index=0, file_index=0)
    data_file.parent.mkdir(parents=True)
    pq.write_table(data, data_file)
    (root / EPISODES_PATH).parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / EPISODES_PATH)
    pq.write_table(_tasks_table(tasks), root / TASKS_PATH)
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type or meta.scene,
        "total_episodes": len(rows),
        "total_frames": frames,
        "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": fps,
        "splits": {"train": f"0:{len(rows)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": features(meta, fps),
    }
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (root / "meta" / "stats.json").write_text(json.dumps(_stats(data, video_file), indent=4))
    return len(rows)


def av_fraction(numerator: int, denominator: int) -> Any:
    from fractions import Fraction

    return Fraction(numerator, denominator)


def _tasks_table(tasks: dict[str, int]) -> Any:
    """tasks.parquet as pandas writes it (LeRobot reads it with pandas): the task text is the
    index, recorded in the schema's pandas metadata so that read_parquet restores it."""
    import pyarrow as pa

    table = pa.table(
        {
            "task_index": pa.array(list(tasks.values()), pa.int64()),
            "task": pa.array(list(tasks), pa.string()),
        }
    )
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    return table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})


def _stats(data: Any, video_file: Path) -> dict[str, Any]:
    """Per-feature statistics LeRobot's policies normalise with (pictures per channel, in
    [0, 1], from every frame of the video)."""
    stats: dict[str, Any] = {}
    for name in data.column_names:
        column = data.column(name).combine_chunks()
        values = (
            np.asarray(column.flatten()).reshape(len(column), -1)
            if hasattr(column, "flatten")
            else np.asarray(column).reshape(-1, 1)
        ).astype(np.float64)
        stats[name] = {
            "min": values.min(0).tolist(),
            "max": values.max(0).tolist(),
            "mean": values.mean(0).tolist(),
            "std": values.std(0).tolist(),
            "count": [len(values)],
        }
    pixels = np.stack(list(_decode(video_file))).astype(np.float64) / 255.0  # (N, H, W, 3)
    per_channel = pixels.reshape(-1, 3)
    stats[CAMERA_KEY] = {
        name: [[[float(v)]] for v in fn(per_channel, 0)]
        for name, fn in (("min", np.min), ("max", np.max), ("mean", np.mean), ("std", np.std))
    }
    stats[CAMERA_KEY]["count"] = [len(pixels)]
    return stats


def _decode(video_file: Path) -> Iterable[np.ndarray]:
    import av

    with av.open(str(video_file)) as container:
        for frame in container.decode(container.streams.video[0]):
            yield frame.to_ndarray(format="rgb24")


# -- reading ---------------------------------------------------------------------------------
def read_info(root: str | Path) -> dict[str, Any]:
    path = Path(root) / "meta" / "info.json"
    if not path.is_file():
        raise LeRobotError(f"{root} is not a LeRobot dataset: it has no meta/info.json")
    info = json.loads(path.read_text())
    version = str(info.get("codebase_version", "?"))
    if not version.startswith("v3"):
        raise LeRobotError(
            f"{root} is a LeRobot {version} dataset; this reads v3.x (convert it with "
            "LeRobot's convert_dataset_v21_to_v30)"
        )
    return info


def _names(feature: dict[str, Any], prefix: str) -> tuple[str, ...]:
    """A feature's channel names: a list, or LeRobot's {"motors": [...]} form, else numbered."""
    names = feature.get("names")
    if isinstance(names, dict) and names:
        names = next(iter(names.values()))
    size = int(np.prod(feature["shape"]))
    if isinstance(names, list) and len(names) == size and all(isinstance(n, str) for n in names):
        return tuple(names)
    return tuple(f"{prefix}_{i}" for i in range(size))


def read_lerobot(
    root: str | Path,
    image_size: tuple[int, int] | None = None,
    image_key: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[DatasetMeta, list[Episode]]:
    """A v3 dataset as our episodes (see the module doc); pictures resized to `image_size`
    (height, width) when given, else kept as they are."""
    import pyarrow.parquet as pq

    root = Path(root)
    info = read_info(root)
    feats: dict[str, Any] = info["features"]
    cameras = [k for k, f in feats.items() if f.get("dtype") in ("video", "image")]
    key = image_key or (CAMERA_KEY if CAMERA_KEY in feats else (cameras or [None])[0])
    for needed, what in (
        (key, "a camera (video or image feature)"),
        (STATE_KEY, "the joint state"),
        (ACTION_KEY, "actions"),
    ):
        if needed is None or needed not in feats:
            raise LeRobotError(f"{root}: no {needed or 'observation.images.*'} ({what})")
    joint_names = _names(feats[STATE_KEY], "joint")
    action_names = _names(feats[ACTION_KEY], "action")
    fps = float(info["fps"])
    episodes_table = pq.read_table(sorted((root / "meta" / "episodes").glob("*/*.parquet")))
    tasks = _read_tasks(root)
    data_cache: dict[str, Any] = {}
    video_cache: dict[str, list[np.ndarray]] = {}
    episodes: list[Episode] = []
    rows = episodes_table.to_pylist()
    for number, row in enumerate(rows, 1):
        data_file = info["data_path"].format(
            chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]
        )
        if data_file not in data_cache:
            data_cache.clear()  # one file at a time: episodes are stored in order
            data_cache[data_file] = pq.read_table(root / data_file)
        table = data_cache[data_file]
        frames = _rows_of(table, row["episode_index"])
        count = len(frames["frame_index"])
        if feats[key]["dtype"] == "video":
            images = _video_frames(root, info, row, key, count, fps, video_cache)
        else:
            images = _parquet_images(frames[key])
        if image_size is not None:
            images = np.stack([resize_rgb(image, image_size) for image in images])
        states = np.asarray(frames[STATE_KEY], np.float32).reshape(count, -1)
        velocities = (
            np.asarray(frames[VELOCITY_KEY], np.float32).reshape(count, -1)
            if VELOCITY_KEY in frames
            else np.zeros_like(states)
        )
        task_index = frames["task_index"][0] if "task_index" in frames else 0
        instruction = tasks.get(task_index) or (row.get("tasks") or [""])[0]
        episodes.append(
            Episode(
                instruction=instruction,
                images=images,
                joint_positions=states,
                joint_velocities=velocities,
                actions=np.asarray(frames[ACTION_KEY], np.float32).reshape(count, -1),
                success=bool(row.get("success", True)),
            )
        )
        if progress is not None:
            progress(number, len(rows))
    if not episodes:
        raise LeRobotError(f"{root} holds no episodes")
    height, width = episodes[0].images.shape[1:3]
    meta = DatasetMeta(
        scene=str(info.get("robot_type") or "lerobot"),
        joint_names=joint_names,
        action_names=action_names,
        image_size=(height, width),
        control_dt=1.0 / fps,
    )
    return meta, episodes


def _read_tasks(root: Path) -> dict[int, str]:
    """task_index -> text; the text is tasks.parquet's pandas index (named or not)."""
    import pyarrow.parquet as pq

    path = root / TASKS_PATH
    if not path.is_file():
        return {}
    table = pq.read_table(path)
    text_column = next((n for n in table.column_names if n != "task_index"), None)
    if text_column is None:
        return {}
    return dict(
        zip(
            table.column("task_index").to_pylist(),
            table.column(text_column).to_pylist(),
            strict=True,
        )
    )


def _rows_of(table: Any, episode_index: int) -> dict[str, list[Any]]:
    import pyarrow.compute as pc

    selected = table.filter(pc.equal(table.column("episode_index"), episode_index))
    selected = selected.sort_by("frame_index")
    return {name: selected.column(name).to_pylist() for name in selected.column_names}


def _video_frames(
    root: Path,
    info: dict[str, Any],
    row: dict[str, Any],
    key: str,
    count: int,
    fps: float,
    cache: dict[str, list[np.ndarray]],
) -> np.ndarray:
    """The episode's frames: those of its video file from its from_timestamp on, one per
    1/fps (a file holds many episodes, one after the other)."""
    path = info["video_path"].format(
        video_key=key,
        chunk_index=row[f"videos/{key}/chunk_index"],
        file_index=row[f"videos/{key}/file_index"],
    )
    if path not in cache:
        cache.clear()
        cache[path] = list(_decode(root / path))
    decoded = cache[path]
    first = round(float(row[f"videos/{key}/from_timestamp"]) * fps)
    if first + count > len(decoded):
        raise LeRobotError(
            f"{root / path} has {len(decoded)} frames; episode {row['episode_index']} needs "
            f"{first}..{first + count - 1}"
        )
    return np.stack(decoded[first : first + count])


def _parquet_images(cells: Sequence[Any]) -> np.ndarray:
    """Pictures stored in the parquet rows (LeRobot's "image" dtype: PNG bytes)."""
    import io

    from PIL import Image

    return np.stack(
        [np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB")) for cell in cells]
    )
