"""The `vla-ros` program's command line: help for every subcommand, one-line errors."""

import subprocess
import sys
from pathlib import Path

import pytest

VLA_ROS = str(Path(sys.executable).parent / "vla-ros")
SUBCOMMANDS = (
    "sim",
    "run",
    "train",
    "calibrate",
    "eval",
    "bench",
    "record",
    "dataset",
    "dataset export",
    "dataset import",
    "dataset info",
)


def vla_ros(*args):
    return subprocess.run([VLA_ROS, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("subcommand", ("", *SUBCOMMANDS))
def test_every_subcommand_explains_itself(subcommand):
    result = vla_ros(*subcommand.split(), "--help")
    assert result.returncode == 0
    assert "usage: vla-ros" in result.stdout
    assert len(result.stdout.splitlines()) > 5


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("teleport",), "invalid choice"),
        (("sim", "--duration", "-3"), "must be > 0"),
        (("sim", "--duration", "soon"), "not a number"),
        (("sim", "--scene", "mars"), "invalid choice"),
        (("sim", "--params-file", "/no/such.yaml"), "no such file"),
        (("sim", "--speech", "/no/such.wav"), "no such file"),
        (("run", "--frobnicate"), "unrecognized arguments"),
        (("train",), "required"),
        (("calibrate", "--out", "x"), "required"),
        (("train", "--out", "x", "--bags"), "expected at least one argument"),
        (("train", "--out", "x", "--bags", "/no/such/bag"), "no such folder"),
        (("train", "--out", "x", "--image-size", "big"), "not HEIGHTxWIDTH"),
        (("record", "--time-limit", "-1"), "must be > 0"),
        (("record", "--topic", "camera=/x"), "is not NAME=/topic"),
        (("dataset", "export", "/no/such/dir", "--out", "x"), "no such folder"),
        (("dataset", "convert"), "invalid choice"),
        (("eval", "--task", "fly"), "invalid choice"),
        (("eval", "--scene", "mobile", "--expert", "--task", "pick"), "the mobile scene does"),
        (("eval", "--split", "klingon"), "invalid choice"),
        (("eval", "--split", "colours", "--held-out"), "not allowed with"),
        (("eval", "--expert", "--commands-file", "/no/such.txt"), "No such file"),
        ((), "required"),
    ],
)
def test_bad_arguments_get_one_line_and_status_2(args, complaint):
    result = vla_ros(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert complaint in lines[0]


def test_the_task_and_split_choices_are_the_simulators():
    from vla_ros.cli.main import SPLITS, TASKS
    from vla_ros.sim.tasks import Split, TaskKind

    assert tuple(kind.value for kind in TaskKind) == TASKS
    assert tuple(split.value for split in Split) == SPLITS
