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
from dataclasses import dataclass
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
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
TASKS_PATH = "meta/tasks.parquet"
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
CODEC = "h264"  # libx264: in PyAV's wheels, fast on a CPU, decoded everywhere
CRF = "12"  # near-lossless: the pictures are small and exact colours name the targets
MEGABYTE = 1024 * 1024


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


@dataclass(frozen=True)
class FileLimits:
    """How LeRobot splits a dataset into files (its defaults): an episode starts a new data or
    video file when the current one would reach `data_mb` / `video_mb` megabytes, and a chunk
    folder holds `chunks_size` files."""

    data_mb: float = 100.0
    video_mb: float = 200.0
    chunks_size: int = 1000

    def after(self, position: tuple[int, int]) -> tuple[int, int]:
        """The (chunk, file) index that follows `position`."""
        chunk, file = position[0], position[1] + 1
        return (chunk + 1, 0) if file == self.chunks_size else (chunk, file)


def export_lerobot(
    meta: DatasetMeta,
    episodes: Iterable[Episode],
    root: str | Path,
    robot_type: str | None = None,
    progress: Callable[[int], None] | None = None,
    limits: FileLimits = FileLimits(),
) -> int:
    """Write the episodes as a v3 dataset in `root` (created; must not exist). Returns the
    number of episodes. The frame rate is the control rate, which must be a whole number of Hz
    (LeRobot's fps is an integer). Data and video files are split as LeRobot splits them:
    an episode goes to a new file when the current one would reach its size limit."""
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
    root.mkdir(parents=True)
    data = _DataFiles(root, meta, limits)
    video = _VideoFiles(root, fps, (width, height), limits)
    rows: list[dict[str, Any]] = []
    tasks: dict[str, int] = {}
    frames = 0
    try:
        for number, episode in enumerate(episodes):
            count = len(episode)
            task = tasks.setdefault(episode.instruction, len(tasks))
            data_chunk, data_file = data.add(episode, number, frames, task, fps)
            video_chunk, video_file, first_frame = video.add(episode.images)
            rows.append(
                {
                    "episode_index": number,
                    "tasks": [episode.instruction],
                    "length": count,
                    "data/chunk_index": data_chunk,
                    "data/file_index": data_file,
                    "dataset_from_index": frames,
                    "dataset_to_index": frames + count,
                    f"videos/{CAMERA_KEY}/chunk_index": video_chunk,
                    f"videos/{CAMERA_KEY}/file_index": video_file,
                    f"videos/{CAMERA_KEY}/from_timestamp": first_frame / fps,
                    f"videos/{CAMERA_KEY}/to_timestamp": (first_frame + count) / fps,
                    "meta/episodes/chunk_index": 0,
                    "meta/episodes/file_index": 0,
                    "success": bool(episode.success),
                }
            )
            frames += count
            if progress is not None:
                progress(number + 1)
    finally:
        data.close()
        video.close()
    if not rows:
        raise LeRobotError("no episodes to export")
    (root / EPISODES_PATH).parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / EPISODES_PATH)
    pq.write_table(_tasks_table(tasks), root / TASKS_PATH)
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type or meta.scene,
        "total_episodes": len(rows),
        "total_frames": frames,
        "total_tasks": len(tasks),
        "chunks_size": limits.chunks_size,
        "data_files_size_in_mb": limits.data_mb,
        "video_files_size_in_mb": limits.video_mb,
        "fps": fps,
        "splits": {"train": f"0:{len(rows)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": features(meta, fps),
    }
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    stats = {**data.stats(), CAMERA_KEY: video.stats()}
    (root / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))
    return len(rows)


class _DataFiles:
    """data/chunk-*/file-*.parquet: each file's episodes gathered, written when it is full.
    Sizes are the rows' in-memory size (parquet compresses them a little further)."""

    def __init__(self, root: Path, meta: DatasetMeta, limits: FileLimits) -> None:
        self.root, self.meta, self.limits = root, meta, limits
        self.position = (0, 0)
        self.pending: list[Any] = []  # the current file's episodes, as tables
        self.every: list[Any] = []  # every episode's table, for the statistics

    def add(
        self, episode: Episode, number: int, first_index: int, task: int, fps: int
    ) -> tuple[int, int]:
        """Put the episode's rows in a file; returns that file's (chunk, file) index."""
        table = self._table(episode, number, first_index, task, fps)
        size = sum(t.nbytes for t in self.pending)
        if self.pending and size + table.nbytes >= self.limits.data_mb * MEGABYTE:
            self.close()
            self.position = self.limits.after(self.position)
        self.pending.append(table)
        self.every.append(table)
        return self.position

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.pending:
            return
        chunk, file = self.position
        path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(self.pending), path)
        self.pending = []

    def stats(self) -> dict[str, Any]:
        import pyarrow as pa

        return _column_stats(pa.concat_tables(self.every))

    def _table(self, episode: Episode, number: int, first_index: int, task: int, fps: int) -> Any:
        import pyarrow as pa

        count = len(episode)

        def vectors(values: np.ndarray) -> Any:
            flat = pa.array(np.asarray(values, np.float32).reshape(-1), pa.float32())
            return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])

        def integers(values: np.ndarray) -> Any:
            return pa.array(values, pa.int64())

        return pa.table(
            {
                STATE_KEY: vectors(episode.joint_positions),
                VELOCITY_KEY: vectors(episode.joint_velocities),
                ACTION_KEY: vectors(episode.actions),
                "timestamp": pa.array(np.arange(count) / fps, pa.float32()),
                "frame_index": integers(np.arange(count)),
                "episode_index": integers(np.full(count, number)),
                "index": integers(np.arange(first_index, first_index + count)),
                "task_index": integers(np.full(count, task)),
            }
        )


class _VideoFiles:
    """videos/<camera>/chunk-*/file-*.mp4: episodes' frames one after another in a file, a new
    file when the next episode would take the current one to its size limit (estimated from the
    bytes encoded so far per frame)."""

    def __init__(self, root: Path, fps: int, size: tuple[int, int], limits: FileLimits) -> None:
        self.root, self.fps, self.size, self.limits = root, fps, size, limits
        self.position = (0, 0)
        self.container: Any = None
        self.stream: Any = None
        self.frames_in_file = 0
        self.bytes_in_file = 0
        self.files: list[Path] = []

    def add(self, images: np.ndarray) -> tuple[int, int, int]:
        """Encode the episode's pictures; returns (chunk, file, first frame in that file)."""
        import av

        if self.container is not None:
            per_frame = self.bytes_in_file / max(self.frames_in_file, 1)
            if self.bytes_in_file + per_frame * len(images) >= self.limits.video_mb * MEGABYTE:
                self.close()
                self.position = self.limits.after(self.position)
        if self.container is None:
            self._open()
        first = self.frames_in_file
        for image in images:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = self.frames_in_file
            frame.time_base = av_fraction(1, self.fps)
            self._mux(self.stream.encode(frame))
            self.frames_in_file += 1
        return (*self.position, first)

    def close(self) -> None:
        if self.container is None:
            return
        self._mux(self.stream.encode(None))
        self.container.close()
        self.container = None

    def stats(self) -> dict[str, Any]:
        """Per-channel statistics of every frame, in [0, 1], as LeRobot keeps them for pictures."""
        low, high = np.full(3, np.inf), np.full(3, -np.inf)
        total, squares = np.zeros(3), np.zeros(3)
        pixels = frames = 0
        for path in self.files:
            for image in _decode(path):
                values = image.reshape(-1, 3).astype(np.float64) / 255.0
                low, high = np.minimum(low, values.min(0)), np.maximum(high, values.max(0))
                total += values.sum(0)
                squares += (values**2).sum(0)
                pixels += len(values)
                frames += 1
        mean = total / max(pixels, 1)
        std = np.sqrt(np.maximum(squares / max(pixels, 1) - mean**2, 0.0))
        stats: dict[str, Any] = {
            name: [[[float(v)]] for v in values]
            for name, values in (("min", low), ("max", high), ("mean", mean), ("std", std))
        }
        stats["count"] = [frames]
        return stats

    def _open(self) -> None:
        import av

        chunk, file = self.position
        path = self.root / VIDEO_PATH.format(
            video_key=CAMERA_KEY, chunk_index=chunk, file_index=file
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=self.fps)
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        # A key frame every 2 frames, as LeRobot encodes: seeking to any frame stays cheap.
        self.stream.options = {"crf": CRF, "g": "2", "preset": "fast"}
        self.stream.codec_context.time_base = av_fraction(1, self.fps)
        self.files.append(path)
        self.frames_in_file = self.bytes_in_file = 0

    def _mux(self, packets: Any) -> None:
        self.bytes_in_file += sum(packet.size for packet in packets)
        self.container.mux(packets)


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


def _column_stats(data: Any) -> dict[str, Any]:
    """min / max / mean / std / count of every column (per channel for vectors), which LeRobot's
    policies normalise with."""
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


def cameras(root: str | Path) -> list[str]:
    """The dataset's camera features (video or image), in the order info.json lists them."""
    feats: dict[str, Any] = read_info(root)["features"]
    return [key for key, feature in feats.items() if feature.get("dtype") in ("video", "image")]


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
    found = cameras(root)
    key = image_key or (CAMERA_KEY if CAMERA_KEY in feats else (found or [None])[0])
    for needed, what in (
        (key, "a camera (video or image feature)"),
        (STATE_KEY, "the joint state"),
        (ACTION_KEY, "actions"),
    ):
        if needed is None or needed not in feats:
            has = f"; its cameras: {', '.join(found) or 'none'}" if needed is key else ""
            raise LeRobotError(f"{root}: no {needed or 'observation.images.*'} ({what}){has}")
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
