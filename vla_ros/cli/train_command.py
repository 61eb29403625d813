"""`vla-ros train`: collect scripted-expert demonstrations in the simulator (or reuse a dataset),
then train, calibrate and save a checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from vla_ros.learn.dataset import META_FILE


def overrides(settings: list[str]) -> dict[str, object]:
    """`key=value` pairs (values read as YAML: numbers, booleans, lists) as model overrides."""
    result: dict[str, object] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise SystemExit(f"vla-ros train: --set wants key=value, got {setting!r}")
        result[key.strip()] = yaml.safe_load(value)
    return result


def run(args: argparse.Namespace) -> int:
    from vla_ros.learn.collect import collect
    from vla_ros.learn.train import train
    from vla_ros.sim.scenes import scene_with_objects

    if args.recipe is not None:
        from vla_ros.learn.recipes import run_recipe

        if args.objects != "fixed":
            raise SystemExit("vla-ros train: a --recipe says what objects its scenes show")
        try:
            run_recipe(
                args.recipe,
                args.out,
                args.data or Path("data") / f"recipe-{args.recipe}",
            )
        except ValueError as error:
            raise SystemExit(f"vla-ros train: {error}") from None
        return 0
    model_overrides = overrides(args.set)
    if args.bags or args.lerobot:
        return _train_imported(args, model_overrides)
    data: Path = args.data or Path("data") / args.scene
    if (data / META_FILE).is_file():
        print(f"vla-ros train: reusing the dataset in {data}")
    else:
        print(
            f"vla-ros train: collecting {args.episodes} expert episodes of {args.scene} in {data}"
        )
        scene = scene_with_objects(args.scene, args.objects)
        print(collect(scene, data, args.episodes, seed=args.seed))
    checkpoint = train(
        data, args.out, config_overrides=model_overrides, epochs=args.epochs, seed=args.seed
    )
    objects = f" --objects {args.objects}" if args.objects != "fixed" else ""
    print(
        f"vla-ros train: checkpoint in {checkpoint}\n"
        f"  vla-ros eval --scene {args.scene}{objects} --checkpoint {checkpoint}\n"
        f"  vla-ros sim --scene {args.scene} --checkpoint {checkpoint}"
    )
    return 0


def _train_imported(args: argparse.Namespace, model_overrides: dict[str, object]) -> int:
    """Train on bags or a LeRobot dataset: their episodes become a dataset, then the recipe."""
    from vla_ros.cli.dataset_command import bag_options
    from vla_ros.data import sources
    from vla_ros.data.bags import BagError
    from vla_ros.data.lerobot import LeRobotError
    from vla_ros.data.training import train_on

    folders = args.bags or [args.lerobot]
    try:
        meta, episodes = sources.load(
            folders,
            args.image_size,
            period=1.0 / args.rate,
            bag_options=bag_options(args),
            image_key=args.image_key,
        )
        data = args.data or args.out.with_name(f"{args.out.name}_data")
        checkpoint, history = train_on(
            meta, episodes, data, args.out, args.epochs, args.seed, model_overrides
        )
    except (BagError, LeRobotError, ValueError, FileExistsError) as error:
        print(f"vla-ros train: error: {error}", file=sys.stderr)
        return 1
    print(
        f"vla-ros train: checkpoint in {checkpoint}; held-out loss "
        f"{history.heldout[0]:.4f} -> {history.heldout[-1]:.4f} over {len(history.heldout)} "
        f"epochs (loss.png)\n"
        f"  vla-ros sim --scene {args.scene} --checkpoint {checkpoint}"
    )
    return 0
