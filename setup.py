"""ament_python build of vla_ros: also a plain pip-installable package (see README)."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "vla_ros"
NODES = (
    "camera_node",
    "voice_command_node",
    "joint_state_node",
    "fusion_node",
    "safety_node",
    "sim_node",
    "speech_node",
)


def runtime_requirements() -> list[str]:
    """requirements.txt, the one list of what vla_ros needs to run (ranges, not pins)."""
    lines = (Path(__file__).resolve().parent / "requirements.txt").read_text().splitlines()
    return [line for line in (raw.split("#")[0].strip() for raw in lines) if line]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={
        PACKAGE: ["checkpoints/*/*", "sim/assets/*"],
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    # colcon installs with --single-version-externally-managed, which leaves these to pip.
    install_requires=runtime_requirements(),
    zip_safe=False,
    maintainer="vla_ros maintainers",
    maintainer_email="maintainers@vla-ros.invalid",
    description=("Vision-Language-Action control for ROS 2 with an uncertainty-aware safety layer"),
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [f"{node} = {PACKAGE}.nodes.{node}:main" for node in NODES]
        + [f"vla-ros = {PACKAGE}.cli.main:main"],
    },
)
