"""`vla-ros eval`: closed-loop success of a checkpoint (or the scripted expert) in the simulator,
judged as deployed: through the safety node's logic, at its rate, with the graph's latency."""

from __future__ import annotations

import argparse
import json
import sys

from vla_ros.learn.evaluate import (
    DEFAULT_LATENCY,
    Deployment,
    evaluate,
    language_report,
    language_table,
)
from vla_ros.sim.scenes import scene_with_objects
from vla_ros.sim.tasks import Split, TaskKind


def run(args: argparse.Namespace) -> int:
    if args.expert and (args.checkpoint or args.uncertainty_report):
        raise SystemExit("vla-ros eval: --expert has no checkpoint to judge")
    if args.uncertainty_report is not None:
        from vla_ros.learn.uncertainty_report import uncertainty_report

        uncertainty_report(args.checkpoint or args.scene, args.uncertainty_report, args.out)
        return 0
    task = None if args.task is None else TaskKind(args.task)
    scene = scene_with_objects(args.scene, args.objects)
    kinds = scene.task_kinds
    if task is not None and task not in kinds:
        sys.stderr.write(
            f"vla-ros eval: error: --task {args.task}: the {args.scene} scene does "
            f"{', '.join(kind.value for kind in kinds)}\n"
        )
        return 2
    latency = DEFAULT_LATENCY if args.latency is None else args.latency
    try:
        deployment = Deployment.for_scene(args.scene, latency, safety=not args.no_safety)
    except ValueError as error:  # a bad --latency: an argument error, like argparse's
        sys.stderr.write(f"vla-ros eval: error: {error}\n")
        return 2
    controller = None
    if not args.expert:
        from vla_ros.model import load_policy

        controller = load_policy(args.checkpoint or args.scene)
    who = "expert" if args.expert else f"checkpoint {args.checkpoint or args.scene}"
    if args.diagnose:
        from vla_ros.learn.diagnose import command_following

        report = command_following(scene, args.episodes, controller, seed=args.seed)
        print(f"{who}: {report.summary()}")
        _write_json(args, {"controller": who, "seed": args.seed, **report.to_dict()})
        return 0
    if args.language_report:
        report = language_report(scene, args.episodes, controller, args.seed, deployment, task)
        print(
            f"{who}, {args.scene} ({args.objects} objects), {deployment.describe()}, "
            f"seed {args.seed}:"
        )
        print(language_table(report))
        _write_json(
            args,
            {
                "controller": who,
                "seed": args.seed,
                "splits": {split.value: result.to_dict() for split, result in report.items()},
            },
        )
        return 0
    commands: list[str] = []
    if args.commands_file is not None:
        try:
            text = args.commands_file.read_text(encoding="utf-8")
        except OSError as error:
            sys.stderr.write(f"vla-ros eval: error: --commands-file: {error}\n")
            return 2
        commands = [line.strip() for line in text.splitlines() if line.strip()]
        if not commands:
            sys.stderr.write(f"vla-ros eval: error: {args.commands_file} holds no command\n")
            return 2
    split = Split.HELD_OUT if args.held_out else Split(args.split)
    if split is Split.COMBINATIONS and scene.objects is None:
        sys.stderr.write(
            "vla-ros eval: error: --split combinations needs --objects compositional (the fixed "
            "objects have no combination held out of training)\n"
        )
        return 2
    result = evaluate(
        scene,
        args.episodes,
        controller,
        seed=args.seed,
        split=split,
        deployment=deployment,
        task=task,
        commands=commands,
    )
    print(f"{who}: {result.summary()}")
    if commands:
        print(f"  commands: the {len(commands)} of {args.commands_file}, in turn")
    for episode in result.episodes:
        if not episode.success:
            print(f"  failed: seed {episode.seed} {episode.instruction!r}: {episode.state.value}")
    _write_json(args, {"controller": who, "seed": args.seed, **result.to_dict()})
    return 0


def _write_json(args: argparse.Namespace, report: dict[str, object]) -> None:
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"  results in {args.json}")
