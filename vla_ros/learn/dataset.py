"""Demonstration datasets: one compressed .npz per episode plus a meta.json describing them all.

The images are stored at the policy's input size, after the same resize the camera node applies
(`vla_ros.logic.images.resize_rgb`), so a policy trains on exactly what it will see when deployed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
META_FILE = "meta.json"


@dataclass(frozen=True)
class DatasetMeta:
    scene: str
    joint_names: tuple[str, ...]
    action_names: tuple[str, ...]
    image_size: tuple[int, int]  # (height, width)
    control_dt: float
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not self.action_names:
            raise ValueError("a dataset needs at least one action channel")
        if self.control_dt <= 0:
            raise ValueError(f"control_dt must be positive, got {self.control_dt}")
        if len(self.image_size) != 2 or min(self.image_size) <= 0:
            raise ValueError(f"image_size must be (height, width) > 0, got {self.image_size}")


@dataclass(frozen=True)
class Episode:
    """T steps of one demonstration; arrays are indexed by step."""

    instruction: str
    images: np.ndarray  # (T, H, W, 3) uint8 RGB
    joint_positions: np.ndarray  # (T, J) float32
    joint_velocities: np.ndarray  # (T, J) float32
    actions: np.ndarray  # (T, A) float32, physical units
    success: bool
    # (T, 2) float32: where the named object is in the picture, (x, y) in [-1, 1] from the
    # top-left corner; NaN where it is out of view. None where the source does not know (bags).
    target_pixels: np.ndarray | None = None
    # Whether the instruction names one object here; False for a command to refuse (an absent
    # object, one of several, nonsense), demonstrated by not moving.
    names_target: bool = True

    def __post_init__(self) -> None:
        steps = len(self.images)
        for name in ("joint_positions", "joint_velocities", "actions", "target_pixels"):
            if getattr(self, name) is not None and len(getattr(self, name)) != steps:
                raise ValueError(f"{name} has {len(getattr(self, name))} steps, images {steps}")
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be (T, H, W, 3) uint8, got {self.images.shape}")

    def __len__(self) -> int:
        return len(self.images)


class DatasetWriter:
    """Writes episodes into a folder; the meta.json is written first so a partial run is usable."""

    def __init__(self, root: str | Path, meta: DatasetMeta) -> None:
        self.root = Path(root)
        self.meta = meta
        self.root.mkdir(parents=True, exist_ok=True)
        meta_path = self.root / META_FILE
        if meta_path.exists() and read_meta(self.root) != meta:
            raise ValueError(f"{self.root} already holds a dataset with different meta data")
        meta_path.write_text(json.dumps(asdict(meta), indent=2))
        self._count = len(list(self.root.glob("episode_*.npz")))

    def write(self, episode: Episode) -> Path:
        height, width = self.meta.image_size
        if episode.images.shape[1:3] != (height, width):
            raise ValueError(
                f"episode images are {episode.images.shape[1:3]}, "
                f"the dataset's are {(height, width)}"
            )
        if episode.actions.shape[1] != len(self.meta.action_names):
            raise ValueError(
                f"episode has {episode.actions.shape[1]} action channels, "
                f"the dataset {len(self.meta.action_names)}"
            )
        path = self.root / f"episode_{self._count:06d}.npz"
        optional = {}
        if episode.target_pixels is not None:
            optional["target_pixels"] = episode.target_pixels.astype(np.float32)
        if not episode.names_target:
            optional["names_target"] = np.array(False)
        np.savez_compressed(
            path,
            instruction=np.array(episode.instruction),
            images=episode.images,
            joint_positions=episode.joint_positions.astype(np.float32),
            joint_velocities=episode.joint_velocities.astype(np.float32),
            actions=episode.actions.astype(np.float32),
            success=np.array(episode.success),
            **optional,
        )
        self._count += 1
        return path


def read_meta(root: str | Path) -> DatasetMeta:
    path = Path(root) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{root} is not a dataset: it has no {META_FILE}")
    raw = json.loads(path.read_text())
    if raw.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: dataset format {raw.get('format_version')}, this code reads {FORMAT_VERSION}"
        )
    return DatasetMeta(
        scene=raw["scene"],
        joint_names=tuple(raw["joint_names"]),
        action_names=tuple(raw["action_names"]),
        image_size=tuple(raw["image_size"]),
        control_dt=float(raw["control_dt"]),
    )


def iter_episodes(root: str | Path) -> Iterator[Episode]:
    """The episodes of a dataset in the order they were written (plain arrays, no pickle)."""
    for path in sorted(Path(root).glob("episode_*.npz")):
        with np.load(path, allow_pickle=False) as data:
            yield Episode(
                instruction=str(data["instruction"]),
                images=data["images"],
                joint_positions=data["joint_positions"],
                joint_velocities=data["joint_velocities"],
                actions=data["actions"],
                success=bool(data["success"]),
                target_pixels=data.get("target_pixels"),
                names_target=bool(data["names_target"]) if "names_target" in data else True,
            )
