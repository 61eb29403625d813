"""Any folder of demonstrations as episodes: a rosbag2 directory, a LeRobot v3 dataset, or a
dataset in `vla-ros train`'s own format (told apart by the file that describes each)."""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vla_ros.learn.dataset import META_FILE, DatasetMeta, Episode


class Kind(enum.Enum):
    BAG = "rosbag2"
    LEROBOT = "LeRobot v3"
    NATIVE = "vla_ros dataset"


def kind_of(path: str | Path) -> Kind:
    path = Path(path)
    if (path / "metadata.yaml").is_file():
        return Kind.BAG
    if (path / "meta" / "info.json").is_file():
        return Kind.LEROBOT
    if (path / META_FILE).is_file():
        return Kind.NATIVE
    what = "no such folder" if not path.exists() else "none of metadata.yaml, meta/info.json"
    raise ValueError(f"{path} is not a rosbag2 directory, LeRobot dataset or dataset ({what})")


def load(
    paths: Sequence[str | Path],
    image_size: tuple[int, int] | None,
    period: float = 0.1,
    bag_options: dict[str, Any] | None = None,
    verbose: bool = True,
    image_key: str | None = None,
) -> tuple[DatasetMeta, list[Episode]]:
    """The episodes of every folder (all of one kind: bags, or one dataset). Pictures come at
    `image_size` (height, width); None keeps a dataset's own size (bags need a size).
    `image_key` picks a LeRobot dataset's camera (default: its first)."""
    kinds = {kind_of(path) for path in paths}
    if len(kinds) != 1:
        raise ValueError(f"give folders of one kind, not {', '.join(k.value for k in kinds)}")
    kind = kinds.pop()
    if kind is Kind.BAG:
        from vla_ros.data.bags import read_bags

        def said(number: int, bag: Any) -> None:
            if verbose:
                skipped = f", left out: {'; '.join(bag.skipped)}" if bag.skipped else ""
                print(
                    f"bag {number}/{len(paths)} {bag.path}: {len(bag.episodes)} episode(s) "
                    f"from {bag.command_topic}{skipped}",
                    file=sys.stderr,
                )

        return read_bags(
            paths,
            progress=said,
            image_size=image_size or (64, 64),
            period=period,
            **(bag_options or {}),
        )
    if len(paths) != 1:
        raise ValueError(f"give one {kind.value} at a time, got {len(paths)}")
    if kind is Kind.LEROBOT:
        from vla_ros.data.lerobot import read_lerobot

        return read_lerobot(paths[0], image_size=image_size, image_key=image_key)
    from vla_ros.learn.dataset import iter_episodes, read_meta
    from vla_ros.logic.images import resize_rgb

    meta = read_meta(paths[0])
    episodes = list(iter_episodes(paths[0]))
    if image_size is not None and tuple(image_size) != tuple(meta.image_size):
        import dataclasses

        import numpy as np

        episodes = [
            dataclasses.replace(e, images=np.stack([resize_rgb(i, image_size) for i in e.images]))
            for e in episodes
        ]
        meta = dataclasses.replace(meta, image_size=tuple(image_size))
    return meta, episodes
