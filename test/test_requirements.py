"""The dependency files agree: ranges, the lock make setup installs, the ROS-like environment."""

from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def requirements(name: str) -> dict[str, Requirement]:
    lines = (REPO / name).read_text().splitlines()
    parsed = [Requirement(line.split("#")[0]) for line in lines if line.split("#")[0].strip()]
    return {canonicalize_name(r.name): r for r in parsed}


def pinned(requirement: Requirement) -> Version:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not an exact pin"
    return Version(spec.version)


RANGES = requirements("requirements.txt")
LOCK = requirements("requirements-lock.txt")
COMPAT = requirements("requirements-ros-compat.txt")
CONSTRAINTS = requirements("constraints-ros.txt")


def test_every_range_has_a_lower_bound_and_no_exact_pin():
    for requirement in RANGES.values():
        assert any(s.operator == ">=" for s in requirement.specifier), requirement
        assert all(s.operator != "==" for s in requirement.specifier), requirement


def test_the_lock_pins_exactly_the_runtime_dependencies_inside_their_ranges():
    assert LOCK.keys() == RANGES.keys()
    for name, requirement in RANGES.items():
        assert requirement.specifier.contains(pinned(LOCK[name])), LOCK[name]


@pytest.mark.parametrize("name", sorted(RANGES))
def test_the_ros_like_environment_tests_each_lower_bound(name):
    """Ranges claim the suite passed at their lower bound: make test-ros-compat installs it,
    except where the ROS distribution's own version (constraints-ros.txt) is what matters."""
    version = pinned(COMPAT[name])
    assert RANGES[name].specifier.contains(version)
    if name in CONSTRAINTS:
        assert CONSTRAINTS[name].specifier.contains(version)
    (lower,) = (Version(s.version) for s in RANGES[name].specifier if s.operator == ">=")
    assert version.release[: len(lower.release)] == lower.release, f"{version} vs >={lower}"


def test_ros_constraints_keep_numpy_below_2_and_name_only_runtime_dependencies():
    assert not CONSTRAINTS["numpy"].specifier.contains("2.0.0")
    assert CONSTRAINTS["numpy"].specifier.contains("1.26.4")
    assert CONSTRAINTS.keys() <= RANGES.keys()


def test_the_installed_package_declares_the_ranges():
    declared = {
        canonicalize_name(r.name): str(r.specifier)
        for r in map(Requirement, distribution("vla_ros").requires or [])
    }
    assert declared == {name: str(r.specifier) for name, r in RANGES.items()}
