"""The `vla-ros` program's command line: help for every subcommand, one-line errors."""

import subprocess
import sys
from pathlib import Path

import pytest

VLA_ROS = str(Path(sys.executable).parent / "vla-ros")
SUBCOMMANDS = ("sim", "run", "train", "calibrate", "eval", "bench")


def vla_ros(*args):
    return subprocess.run([VLA_ROS, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("subcommand", ("", *SUBCOMMANDS))
def test_every_subcommand_explains_itself(subcommand):
    result = vla_ros(*([subcommand] if subcommand else []), "--help")
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
        ((), "required"),
    ],
)
def test_bad_arguments_get_one_line_and_status_2(args, complaint):
    result = vla_ros(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert complaint in lines[0]
