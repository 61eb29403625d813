"""`vla-ros eval`: closed-loop success of a checkpoint (or the scripted expert) in the simulator."""

from __future__ import annotations

import argparse

from vla_ros.learn.evaluate import evaluate
from vla_ros.sim.tasks import Split


def run(args: argparse.Namespace) -> int:
    if args.expert and (args.checkpoint or args.uncertainty_report):
        raise SystemExit("vla-ros eval: --expert has no checkpoint to judge")
    if args.uncertainty_report is not None:
        from vla_ros.learn.uncertainty_report import uncertainty_report

        uncertainty_report(args.checkpoint or args.scene, args.uncertainty_report, args.out)
        return 0
    controller = None
    if not args.expert:
        from vla_ros.model import load_policy

        controller = load_policy(args.checkpoint or args.scene)
    split = Split.HELD_OUT if args.held_out else Split.TRAIN
    result = evaluate(args.scene, args.episodes, controller, seed=args.seed, split=split)
    who = "expert" if args.expert else f"checkpoint {args.checkpoint or args.scene}"
    print(f"{who}: {result.summary()}")
    uncertainties = [e.mean_uncertainty for e in result.episodes if e.mean_uncertainty is not None]
    if uncertainties:
        print(f"  mean uncertainty per episode: {sum(uncertainties) / len(uncertainties):.3f}")
    for episode in result.episodes:
        if not episode.success:
            print(f"  failed: seed {episode.seed} {episode.instruction!r}: {episode.state.value}")
    return 0
