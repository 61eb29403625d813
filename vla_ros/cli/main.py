"""`vla-ros`: run the robot on the embedded simulator or a real robot, train, evaluate, benchmark.

Only argparse runs at import, so `--help` answers at once; each subcommand imports what it needs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from vla_ros import graph

SCENES = ("mobile", "arm", "humanoid")


class _Parser(argparse.ArgumentParser):
    """Bad arguments get one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def _namespace(text: str) -> str:
    from vla_ros.graph import normalise_namespace

    try:
        return normalise_namespace(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _duration(text: str) -> float:
    from vla_ros.bench.soak import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30m, 90s, 1h)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vla-ros",
        description=(
            "Vision-Language-Action control for ROS 2 with an uncertainty-aware safety layer. "
            "Without a ROS install, `vla-ros sim` runs the whole stack on an embedded simulator."
        ),
    )
    commands = parser.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    sim = commands.add_parser(
        "sim",
        help="run every node on the embedded MuJoCo simulator (headless) and summarise",
        description=(
            "Start the embedded simulator and every node with the default config and the "
            "shipped checkpoint, give the robot a command, show progress, and end with a summary "
            "(task outcome, loop rate, latency percentiles, time slowed or stopped by the "
            "safety node)."
        ),
    )
    sim.add_argument(
        "--command",
        help="what to tell the robot (default: 'go to the red cube' for the mobile base, "
        "'reach the red cube' for the arm and the humanoid)",
    )
    sim.add_argument("--scene", choices=SCENES, default="mobile", help="simulated robot and world")
    sim.add_argument(
        "--duration", type=_positive(float), default=40.0, help="seconds of simulated time"
    )
    sim.add_argument(
        "--params-file",
        type=_existing_file,
        action="append",
        default=[],
        help="extra ROS parameter YAML on top of the scene's config (repeatable)",
    )
    sim.add_argument("--checkpoint", help="policy checkpoint (default: the shipped one)")
    sim.add_argument("--seed", type=int, default=0, help="episode seed (object placement)")
    sim.add_argument("--record", type=Path, help="write the camera view to .mp4 or .gif")
    sim.add_argument(
        "--real-time-factor",
        type=_positive(float),
        default=1.0,
        help="simulated seconds per wall-clock second",
    )
    sim.add_argument("--log-dir", type=Path, help="where node logs go (default: a temp folder)")
    sim.add_argument(
        "--keep-going",
        action="store_true",
        help="run for the whole duration even after the task succeeds",
    )
    sim.add_argument(
        "--namespace",
        type=_namespace,
        help="run every node (and the simulator) under this namespace, e.g. robot1",
    )

    run = commands.add_parser(
        "run",
        help="every node but the simulator, against a real robot or Gazebo",
        description=(
            "Start camera, voice, joint-state, fusion and safety nodes as processes, as "
            "`ros2 launch vla_ros vla.launch.py` does. Ctrl-C, SIGTERM or SIGHUP stops them "
            "within 5 s; the safety node publishes a stop command on the way out. If a node "
            "ends on its own, the others are stopped and the run ends."
        ),
    )
    run.add_argument(
        "--robot",
        choices=SCENES,
        default="mobile",
        help="which shipped config to start from (mobile: vla.yaml, arm.yaml, humanoid.yaml)",
    )
    run.add_argument(
        "--params-file",
        type=_existing_file,
        action="append",
        default=[],
        help="ROS parameter YAML on top of the shipped config (repeatable)",
    )
    run.add_argument("--use-sim-time", action="store_true", help="follow /clock (Gazebo)")
    run.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=[spec.executable for spec in graph.CONTROL_NODES],
        metavar="NODE",
        help="do not start this node (repeatable): e.g. --skip safety_node on a GPU workstation "
        "whose robot runs its own safety node (docs/deployment.md)",
    )
    run.add_argument(
        "--namespace",
        type=_namespace,
        help="run every node under this namespace (topics robot1/cmd_vel, ...), e.g. robot1",
    )
    run.add_argument("--log-level", choices=("debug", "info", "warn", "error"), default="info")

    train = commands.add_parser(
        "train",
        help="collect expert demonstrations in the simulator and train a policy",
        description="Collect scripted-expert demonstrations (or reuse a dataset), then train.",
    )
    train.add_argument("--scene", choices=SCENES, default="mobile")
    train.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    train.add_argument(
        "--recipe",
        metavar="NAME",
        help="make a shipped checkpoint as it was made (arm, humanoid): balanced "
        "demonstrations, cloning, DAgger rounds; its dataset goes to --data (default: "
        "data/recipe-NAME), which must not exist yet",
    )
    train.add_argument(
        "--data", type=Path, help="dataset folder, collected if missing (default: data/SCENE)"
    )
    train.add_argument("--episodes", type=_positive(int), default=400, help="episodes to collect")
    train.add_argument("--epochs", type=_positive(int), default=20)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model configuration override, e.g. fusion.kind=transformer (repeatable)",
    )

    calibrate = commands.add_parser(
        "calibrate",
        help="fit the error model and calibrate a trained checkpoint again, without retraining",
        description=(
            "Replay recorded episodes through a checkpoint: fit its error model on half of them "
            "and measure the conformal quantiles of its uncertainty on the other half, so that "
            "/vla/uncertainty is again a 95 % action-error bound on data like them. Uses the "
            "held-out episodes when DATA is the checkpoint's training dataset, else all of them "
            "(a dataset in the format vla-ros train writes)."
        ),
    )
    calibrate.add_argument("--checkpoint", default="", help="default: the shipped one")
    calibrate.add_argument("--data", type=Path, required=True, help="dataset folder")
    calibrate.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    calibrate.add_argument(
        "--error-model",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add an error model to the checkpoint (or drop it); default: keep what it has",
    )
    calibrate.add_argument("--seed", type=int, default=0, help="which half fits the error model")

    evaluate = commands.add_parser(
        "eval",
        help="closed-loop success rate of a checkpoint (or the expert) in the simulator",
    )
    evaluate.add_argument("--scene", choices=SCENES, default="mobile")
    evaluate.add_argument("--checkpoint", help="policy checkpoint (default: the shipped one)")
    evaluate.add_argument("--expert", action="store_true", help="evaluate the scripted expert")
    evaluate.add_argument("--episodes", type=_positive(int), default=50)
    evaluate.add_argument("--seed", type=int, default=1, help="first episode seed (placements)")
    evaluate.add_argument(
        "--held-out",
        action="store_true",
        help="phrase the tasks with verbs and object nouns never used in training",
    )
    evaluate.add_argument(
        "--no-safety",
        action="store_true",
        help="drive the robot with the bare policy (default: through the safety node's logic "
        "and settings for the scene, at its control rate, with --latency)",
    )
    evaluate.add_argument(
        "--latency",
        type=_non_negative_float,
        default=None,
        help="seconds from a picture to its command acting on the robot (default: the embedded "
        "graph's, 0.05)",
    )
    evaluate.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the results as JSON to FILE"
    )
    evaluate.add_argument(
        "--diagnose",
        action="store_true",
        help="instead of judging success: does the policy head for the named object in the "
        "first second, with the command swapped for another object's, with its language zeroed?",
    )
    evaluate.add_argument(
        "--uncertainty-report",
        type=Path,
        metavar="DATASET",
        help="instead of driving: how well the checkpoint's uncertainty tracks its action error "
        "on DATASET's held-out episodes and on corrupted pictures and commands",
    )
    evaluate.add_argument(
        "--out", type=Path, default=Path("report"), help="folder for the report's JSON and plot"
    )

    bench = commands.add_parser(
        "bench",
        help="latency of the models, the uncertainty methods and the safety node",
        description="Measure on this machine; prints a table, writes JSON and a plot.",
    )
    bench.add_argument("--out", type=Path, default=Path("bench"), help="folder for JSON and plot")
    bench.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    bench.add_argument(
        "--partition",
        type=_positive(int),
        metavar="CUTS",
        help="instead: the fusion node and the safety node on two hosts (network namespaces; "
        "needs root), cut the link CUTS times, report the stop latency",
    )
    bench.add_argument(
        "--soak",
        type=_duration,
        metavar="DURATION",
        help="instead: run the whole simulated stack this long (30m, 2h), the command changing "
        "every 20 s; report memory growth, loop-rate drift, dropped proposals and p99 latency "
        "per window",
    )
    bench.add_argument(
        "--soak-window",
        type=_duration,
        default=300.0,
        metavar="DURATION",
        help="length of a soak report window (default 5m)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = importlib.import_module(f"vla_ros.cli.{args.subcommand}_command")
    return int(handler.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
