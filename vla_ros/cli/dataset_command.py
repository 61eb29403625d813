"""`vla-ros dataset`: export demonstrations (bags, datasets) as LeRobot v3 or rosbag2, import a
LeRobot v3 dataset as a rosbag2 directory, and describe any of them."""

from __future__ import annotations

import argparse
import sys

from vla_ros.learn.progress import Progress


def bag_options(args: argparse.Namespace) -> dict[str, object]:
    """How bags are read: remapped topics and the task of a bag that names none."""
    from vla_ros.data.bags import BagTopics

    return {"topics": BagTopics().remapped(args.topic), "task": args.task}


def run(args: argparse.Namespace) -> int:
    from vla_ros.data.bags import BagError
    from vla_ros.data.lerobot import LeRobotError

    try:
        return {"export": _export, "import": _import, "info": _info}[args.action](args)
    except (BagError, LeRobotError, ValueError, FileExistsError) as error:
        print(f"vla-ros dataset {args.action}: error: {error}", file=sys.stderr)
        return 1


def _export(args: argparse.Namespace) -> int:
    from vla_ros.data import sources

    meta, episodes = sources.load(
        args.sources,
        args.image_size,
        period=1.0 / args.rate,
        bag_options=bag_options(args),
        image_key=args.image_key,
    )
    meter = Progress(f"export {args.format}", len(episodes))
    if args.format == "lerobot":
        from vla_ros.data.lerobot import FileLimits, export_lerobot

        limits = FileLimits(data_mb=args.data_file_mb, video_mb=args.video_file_mb)
        count = export_lerobot(meta, episodes, args.out, progress=meter.update, limits=limits)
    else:
        from vla_ros.data.bags import write_bag

        count = write_bag(args.out, meta, episodes, storage=args.storage)
        meter.update(count)
    print(f"vla-ros dataset export: {count} episodes -> {args.out} ({args.format})")
    return 0


def _import(args: argparse.Namespace) -> int:
    from vla_ros.data.bags import write_bag
    from vla_ros.data.lerobot import read_lerobot

    meter = Progress("read LeRobot dataset", 1)
    meta, episodes = read_lerobot(
        args.source,
        image_key=args.image_key,
        progress=lambda done, total: _tick(meter, done, total),
    )
    count = write_bag(args.out, meta, episodes, storage=args.storage)
    print(f"vla-ros dataset import: {count} episodes -> {args.out} (rosbag2, {args.storage})")
    return 0


def _tick(meter: Progress, done: int, total: int) -> None:
    meter.total = total
    meter.update(done)


def _info(args: argparse.Namespace) -> int:
    from vla_ros.data.info import info

    print(info(args.source, args.sheet, bag_options=bag_options(args), image_key=args.image_key))
    return 0
