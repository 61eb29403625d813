"""`vla-ros dataset info`: what a folder of demonstrations holds, and a contact sheet.

For a bag: its topics with types, counts and rates, then the episodes as training would see
them. For any kind: episodes (duration, task, outcome), tasks, the range of every action channel,
and one picture per episode (its first frame) on a contact sheet.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from vla_ros.data.sources import Kind, kind_of, load
from vla_ros.learn.dataset import DatasetMeta, Episode

THUMBNAIL = (120, 160)  # (height, width) of each picture on the contact sheet
COLUMNS = 6


def bag_topics(path: Path) -> list[str]:
    """One line per topic: name, type, messages, mean rate over the bag."""
    from rosbags.highlevel import AnyReader

    from vla_ros.data.bags import typestore

    with AnyReader([path], default_typestore=typestore()) as reader:
        seconds = max(reader.duration * 1e-9, 1e-9)
        lines = [f"  {'topic':<24s}{'type':<36s}{'messages':>9s}{'rate':>10s}"]
        for connection in sorted(reader.connections, key=lambda c: c.topic):
            count = connection.msgcount
            lines.append(
                f"  {connection.topic:<24s}{connection.msgtype:<36s}{count:9d}"
                f"{count / seconds:8.1f}Hz"
            )
        lines.insert(0, f"duration {seconds:.1f} s, {reader.message_count} messages")
    return lines


def describe(meta: DatasetMeta, episodes: list[Episode]) -> list[str]:
    steps = sum(len(e) for e in episodes)
    lines = [
        f"episodes {len(episodes)}, {steps} steps at {1 / meta.control_dt:g} Hz "
        f"({steps * meta.control_dt:.1f} s), pictures {meta.image_size[1]}x{meta.image_size[0]}",
        f"joints   {', '.join(meta.joint_names)}",
        "tasks",
    ]
    for task, count in Counter(e.instruction for e in episodes).most_common():
        lines.append(f"  {count:4d}  {task}")
    lines.append("episodes")
    for number, episode in enumerate(episodes, 1):
        lines.append(
            f"  {number:4d}  {len(episode) * meta.control_dt:6.1f} s  "
            f"{'ok  ' if episode.success else 'fail'}  {episode.instruction}"
        )
    if episodes:
        actions = np.concatenate([e.actions for e in episodes])
        lines.append(f"actions  {'channel':<24s}{'min':>9s}{'max':>9s}{'mean':>9s}{'std':>9s}")
        for name, column in zip(meta.action_names, actions.T, strict=True):
            lines.append(
                f"         {name:<24s}{column.min():9.3f}{column.max():9.3f}"
                f"{column.mean():9.3f}{column.std():9.3f}"
            )
    return lines


def contact_sheet(episodes: list[Episode], path: Path) -> Path:
    """The first frame of every episode in a grid, numbered, with the start of its task."""
    from PIL import Image, ImageDraw

    from vla_ros.logic.images import resize_rgb

    height, width = THUMBNAIL
    label = 14
    rows = max(1, -(-len(episodes) // COLUMNS))
    columns = min(COLUMNS, max(1, len(episodes)))
    sheet = Image.new("RGB", (columns * width, rows * (height + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for number, episode in enumerate(episodes):
        row, column = divmod(number, COLUMNS)
        x, y = column * width, row * (height + label)
        sheet.paste(Image.fromarray(resize_rgb(episode.images[0], THUMBNAIL)), (x, y))
        draw.text((x + 2, y + height), f"{number + 1} {episode.instruction}"[:26], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def info(
    path: Path, sheet: Path | None, bag_options: dict | None = None, image_key: str | None = None
) -> str:
    """The report; the contact sheet goes to `sheet` (default: beside the folder), from the
    camera `image_key` of a LeRobot dataset (default: its first)."""
    kind = kind_of(path)
    lines = [f"{path} ({kind.value})"]
    if kind is Kind.BAG:
        from vla_ros.data.bags import read_bag

        lines += bag_topics(path)
        bag = read_bag(path, image_size=THUMBNAIL, **(bag_options or {}))
        lines.append(f"marked episodes ({len(bag.spans)}; commands from {bag.command_topic})")
        for span in bag.spans:
            lines.append(
                f"  {span.index:4d}  {span.duration:6.1f} s  {span.outcome.value:<10s}"
                f"{span.reason:<13s}{span.task}"
            )
        meta, episodes = bag.meta, bag.episodes
        lines.append("as training sees it (failed and re-recorded takes left out):")
    else:
        if kind is Kind.LEROBOT:
            from vla_ros.data.lerobot import cameras

            lines.append(f"cameras: {', '.join(cameras(path))}")
        meta, episodes = load([path], THUMBNAIL, verbose=False, image_key=image_key)
    lines += describe(meta, episodes)
    target = sheet or path.with_name(f"{path.name}_contact_sheet.png")
    lines.append(f"contact sheet: {contact_sheet(episodes, target)}")
    return "\n".join(lines)
