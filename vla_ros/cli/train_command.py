"""`vla-ros train`: collect scripted-expert demonstrations in the simulator (or reuse a dataset),
then train, calibrate and save a checkpoint."""

from __future__ import annotations

import argparse
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

    if args.recipe is not None:
        from vla_ros.learn.recipes import run_recipe

        try:
            run_recipe(args.recipe, args.out, args.data or Path("data") / f"recipe-{args.recipe}")
        except ValueError as error:
            raise SystemExit(f"vla-ros train: {error}") from None
        return 0
    model_overrides = overrides(args.set)
    data: Path = args.data or Path("data") / args.scene
    if (data / META_FILE).is_file():
        print(f"vla-ros train: reusing the dataset in {data}")
    else:
        print(
            f"vla-ros train: collecting {args.episodes} expert episodes of {args.scene} in {data}"
        )
        print(collect(args.scene, data, args.episodes, seed=args.seed))
    checkpoint = train(
        data, args.out, config_overrides=model_overrides, epochs=args.epochs, seed=args.seed
    )
    print(
        f"vla-ros train: checkpoint in {checkpoint}\n"
        f"  vla-ros eval --scene {args.scene} --checkpoint {checkpoint}\n"
        f"  vla-ros sim --scene {args.scene} --checkpoint {checkpoint}"
    )
    return 0
