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
TASKS = ("go_to", "reach", "pick", "place")  # the TaskKind values, without importing the simulator
SPLITS = (  # the Split values, likewise
    "train",
    "held_out",
    "structure",
    "colours",
    "nouns",
    "colours_and_nouns",
    "distractor",
    "attribute",
    "spatial",
    "absent",
    "ambiguous",
    "nonsense",
    "combinations",
)
OBJECTS = ("fixed", "compositional")  # vla_ros.sim.scenes.OBJECT_CHOICES, likewise
OBJECTS_HELP = (
    "what the scene shows: fixed (its four objects, as the shipped checkpoints were trained "
    "on) or compositional (3-5 objects drawn per episode from 7 colours x 5 shapes, some "
    "combinations kept out of training)"
)


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


def _size(text: str) -> tuple[int, int]:
    """HEIGHTxWIDTH in pixels."""
    height, sep, width = text.lower().partition("x")
    if not (sep and height.isdigit() and width.isdigit() and int(height) and int(width)):
        raise argparse.ArgumentTypeError(f"not HEIGHTxWIDTH: {text!r}")
    return int(height), int(width)


def _existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    return path


def _bag_reading(parser: argparse.ArgumentParser) -> None:
    """How bags are read (train --bags, dataset export/info)."""
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="NAME=/TOPIC",
        help="a bag's topic under another name, NAME one of image, joint_states, voice, "
        "cmd_vel, joint_commands, joint_trajectory, episode (repeatable)",
    )
    parser.add_argument(
        "--task", help="the instruction of bags that have neither /vla/episode marks nor commands"
    )
    _camera_choice(parser)


def _camera_choice(parser: argparse.ArgumentParser) -> None:
    """Which camera of a LeRobot dataset with several is read."""
    parser.add_argument(
        "--image-key",
        metavar="FEATURE",
        help="the camera of a LeRobot dataset, e.g. observation.images.wrist (default: its "
        "first video or image feature); a bag's camera is chosen with --topic image=/TOPIC",
    )


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
    sim.add_argument(
        "--speech",
        nargs="?",
        const="",  # the microphone
        type=lambda text: text and _existing_file(text),
        metavar="WAV",
        help="also start speech_node and wait for a spoken command instead of --command: from "
        "the microphone, or played from WAV (16 kHz, 16-bit)",
    )
    sim.add_argument("--scene", choices=SCENES, default="mobile", help="simulated robot and world")
    sim.add_argument("--objects", choices=OBJECTS, default="fixed", help=OBJECTS_HELP)
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
    sim.add_argument(
        "--expert",
        action="store_true",
        help="no policy: the scripted expert drives through /cmd_vel or /joint_commands, as a "
        "teleoperator would, for `vla-ros record` to record (--duration is then per episode)",
    )
    sim.add_argument(
        "--episodes",
        type=_positive(int),
        default=1,
        help="with --expert: episodes one after the other (seeds and words as the collector's)",
    )
    sim.add_argument(
        "--expert-noise",
        type=float,
        help="with --expert: command noise as a fraction of the limits (default: the "
        "collector's, 0.1)",
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
        help="train a policy on expert demonstrations from the simulator, rosbag2 or LeRobot",
        description=(
            "Collect scripted-expert demonstrations (or reuse a dataset), then train. With "
            "--bags, train on rosbag2 recordings (MCAP or sqlite3: vla-ros record's, or any with "
            "camera, joint states and commands), sampled at --rate; with --lerobot, on a "
            "LeRobotDataset v3. Progress on stderr; loss.json and loss.png in the checkpoint."
        ),
    )
    train.add_argument("--scene", choices=SCENES, default="mobile")
    train.add_argument("--objects", choices=OBJECTS, default="fixed", help=OBJECTS_HELP)
    train.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    train.add_argument(
        "--recipe",
        metavar="NAME",
        help="make a checkpoint as its recipe says (arm, humanoid: the shipped ones; arm-pick: "
        "picks up the named object, trained from the shipped arm's weights on demonstrations of "
        "picking up; arm-language: compositional scenes, refusals, presence head, pointer "
        "fusion, first moves; experimental: a one-member version reaches the named object in 42 "
        "%% of episodes; docs/models.md says what each achieves): "
        "balanced demonstrations, cloning, DAgger rounds; its dataset goes to --data (default: "
        "data/recipe-NAME), which must not exist yet",
    )
    train.add_argument(
        "--data",
        type=Path,
        help="dataset folder, collected if missing (default: data/SCENE); with --bags or "
        "--lerobot, where their episodes are written (default: OUT_data)",
    )
    source = train.add_mutually_exclusive_group()
    source.add_argument(
        "--bags", type=_existing_dir, nargs="+", metavar="DIR", help="rosbag2 directories"
    )
    source.add_argument("--lerobot", type=_existing_dir, metavar="DIR", help="LeRobot v3 dataset")
    train.add_argument(
        "--rate", type=_positive(float), default=10.0, help="control rate of --bags (Hz)"
    )
    train.add_argument(
        "--image-size",
        type=_size,
        default=(64, 64),
        metavar="HxW",
        help="pictures of --bags and --lerobot are resized to this (the camera node's size)",
    )
    _bag_reading(train)
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
    evaluate.add_argument("--objects", choices=OBJECTS, default="fixed", help=OBJECTS_HELP)
    evaluate.add_argument("--checkpoint", help="policy checkpoint (default: the shipped one)")
    evaluate.add_argument("--expert", action="store_true", help="evaluate the scripted expert")
    evaluate.add_argument("--episodes", type=_positive(int), default=50)
    evaluate.add_argument(
        "--task",
        choices=TASKS,
        help="what every episode asks for: go_to (mobile), reach (arm, humanoid), or with the "
        "arm's gripper pick (lift the named object 5 cm and hold it 1 s) or place (put it on "
        "the plate or in the bowl and let go); default: the scene's own (go_to or reach)",
    )
    evaluate.add_argument("--seed", type=int, default=1, help="first episode seed (placements)")
    wording = evaluate.add_mutually_exclusive_group()
    wording.add_argument(
        "--split",
        choices=SPLITS,
        default="train",
        help="how the commands are written: train (training wording), held_out (verbs and "
        "nouns never trained on), structure (new sentence structures), colours (new colour "
        "words), nouns (new object nouns), colours_and_nouns, distractor ('..., not the green "
        "ball'), attribute ('the ball', 'the red one'), spatial ('the left cube', 'the nearest "
        "one'), absent ('the red ball' where there is none), ambiguous ('the cube' with two "
        "cubes), nonsense ('sing me a song'): success is refusing them (stopped within 1 s, "
        "nothing reached); combinations (a colour-shape combination never trained on; "
        "--objects compositional)",
    )
    wording.add_argument("--held-out", action="store_true", help="the same as --split held_out")
    wording.add_argument(
        "--language-report",
        action="store_true",
        help="evaluate every split on the same placements and print a table of them",
    )
    wording.add_argument(
        "--commands-file",
        type=Path,
        metavar="FILE",
        help="give these commands (one per line, in turn) instead of written ones",
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

    record = commands.add_parser(
        "record",
        help="record demonstrations from a live ROS graph into a rosbag2 (MCAP) directory",
        description=(
            "Record /camera/image_raw, /joint_states, /voice_command and the robot's commands "
            "(/cmd_vel, /joint_commands, /joint_trajectory) into a rosbag2 directory. A new "
            "command on /voice_command starts an episode; a stop word, /vla/stop, --time-limit "
            "or a key ends it. Keys: s, Enter or right arrow = succeeded; f = failed; r or left "
            "arrow = re-record (kept in the bag, left out of training); q or Esc = quit. "
            "Episode marks go on /vla/episode (docs/data.md). Ctrl-C or SIGTERM end cleanly."
        ),
    )
    record.add_argument("--out", type=Path, help="bag directory to create (default: bags/rec_*)")
    record.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="NAME=/TOPIC",
        help="remap a topic, NAME one of image, joint_states, voice, cmd_vel, joint_commands, "
        "joint_trajectory, episode (repeatable)",
    )
    record.add_argument(
        "--time-limit", type=_positive(float), help="end an episode after this many seconds"
    )
    record.add_argument(
        "--episodes", type=_positive(int), help="stop once this many episodes have ended"
    )
    record.add_argument(
        "--duration", type=_positive(float), help="stop after this many seconds in all"
    )
    record.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    record.add_argument("--use-sim-time", action="store_true", help="log times from /clock")
    record.add_argument(
        "--cmd-vel-stamped", action="store_true", help="/cmd_vel carries TwistStamped"
    )
    record.add_argument("--scene", help="robot name stored in the bag's metadata")
    record.add_argument("--no-keys", action="store_true", help="ignore the keyboard")

    dataset = commands.add_parser(
        "dataset",
        help="export, import and describe demonstrations (rosbag2, LeRobot v3)",
        description="Convert between rosbag2, LeRobotDataset v3 and vla-ros train's datasets.",
    )
    actions = dataset.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    export = actions.add_parser(
        "export",
        help="bags or a dataset as a LeRobot v3 dataset (or a rosbag2 directory)",
        description=(
            "Write episodes (from rosbag2 directories, a LeRobot v3 dataset or a vla-ros "
            "dataset) as a LeRobotDataset v3 (meta/info.json, tasks, episodes, parquet data, "
            "MP4 video) or as a rosbag2 directory."
        ),
    )
    export.add_argument("sources", type=_existing_dir, nargs="+", metavar="SOURCE")
    export.add_argument("--format", choices=("lerobot", "rosbag"), default="lerobot")
    export.add_argument("--out", type=Path, required=True, help="folder to create")
    export.add_argument(
        "--image-size", type=_size, metavar="HxW", help="resize pictures (bags: default 64x64)"
    )
    export.add_argument(
        "--rate", type=_positive(float), default=10.0, help="control rate for bags (Hz)"
    )
    export.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    export.add_argument(
        "--data-file-mb",
        type=_positive(float),
        default=100.0,
        help="LeRobot: start a new parquet data file before one reaches this size (default 100)",
    )
    export.add_argument(
        "--video-file-mb",
        type=_positive(float),
        default=200.0,
        help="LeRobot: start a new MP4 file before one reaches this size (default 200)",
    )
    _bag_reading(export)
    imports = actions.add_parser(
        "import",
        help="a LeRobot v3 dataset as a rosbag2 directory",
        description=(
            "Write a LeRobotDataset v3 as a rosbag2 directory with vla-ros record's topics: "
            "pictures on /camera/image_raw, observation.state on /joint_states, actions on "
            "/cmd_vel (two channels named linear_x, angular_z) or /joint_commands, the task on "
            "/voice_command and episode marks on /vla/episode."
        ),
    )
    imports.add_argument("source", type=_existing_dir, metavar="LEROBOT_DIR")
    imports.add_argument("--out", type=Path, required=True, help="bag directory to create")
    imports.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    _camera_choice(imports)
    info = actions.add_parser(
        "info",
        help="episodes, duration, topics and rates, tasks, action ranges, contact sheet",
        description=(
            "Describe a rosbag2 directory, LeRobot v3 dataset or vla-ros dataset and write a "
            "contact sheet of each episode's first picture."
        ),
    )
    info.add_argument("source", type=_existing_dir, metavar="DIR")
    info.add_argument(
        "--sheet", type=Path, help="contact sheet PNG (default: DIR_contact_sheet.png beside DIR)"
    )
    _bag_reading(info)

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
    bench.add_argument(
        "--speech",
        action="store_true",
        help="instead: spoken commands and stops on the speech corpus (accuracy, stop recall, "
        "false stops, latency by noise level); makes the corpus first if it is missing "
        "(needs espeak-ng and sox)",
    )
    bench.add_argument(
        "--corpus",
        type=Path,
        default=Path("data/speech_corpus"),
        help="speech corpus folder (default: data/speech_corpus, as `make speech-corpus` writes)",
    )
    bench.add_argument(
        "--record",
        action="store_true",
        help="instead: can vla-ros record keep up with a 640x480 camera at 30 Hz and joint "
        "states at 100 Hz (publisher and recorder as processes; messages sent vs recorded)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = importlib.import_module(f"vla_ros.cli.{args.subcommand}_command")
    return int(handler.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
