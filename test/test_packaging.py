"""The package as ROS users get it: colcon build layout, executables, config lookup."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vla_ros import graph

REPO = Path(__file__).resolve().parents[1]
INTERFACE_EXECUTABLES = {
    "camera_node",
    "voice_command_node",
    "joint_state_node",
    "fusion_node",
    "safety_node",
    "sim_node",
}


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory):
    root = tmp_path_factory.mktemp("colcon")
    colcon = Path(sys.executable).parent / "colcon"
    result = subprocess.run(
        [
            str(colcon),
            "--log-base",
            str(root / "log"),
            "build",
            "--base-paths",
            str(REPO),
            "--build-base",
            str(root / "build"),
            "--install-base",
            str(root / "install"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "install" / "vla_ros"


def test_colcon_puts_executables_where_ros2_run_looks(colcon_install):
    lib = colcon_install / "lib" / "vla_ros"
    installed = {p.name for p in lib.iterdir()}
    assert installed >= INTERFACE_EXECUTABLES
    for name in INTERFACE_EXECUTABLES:
        assert os.access(lib / name, os.X_OK)


def test_colcon_installs_launch_config_and_package_index(colcon_install):
    share = colcon_install / "share" / "vla_ros"
    launch_files = {p.name for p in (share / "launch").iterdir()}
    assert {"vla.launch.py", "sim.launch.py", "gazebo.launch.py"} <= launch_files
    assert (share / "config" / "vla.yaml").is_file()
    assert (share / "package.xml").is_file()
    marker = colcon_install / "share" / "ament_index" / "resource_index" / "packages" / "vla_ros"
    assert marker.is_file()


def test_installed_package_finds_its_config_through_the_ament_index(colcon_install, tmp_path):
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "AMENT_PREFIX_PATH": str(colcon_install),
    }
    result = subprocess.run(
        [sys.executable, "-c", "from vla_ros import paths; print(paths.config_file('vla'))"],
        env=env,
        cwd=tmp_path,  # not the source tree
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (
        Path(result.stdout.strip()) == colcon_install / "share" / "vla_ros" / "config" / "vla.yaml"
    )


def test_setup_declares_exactly_the_graph_nodes_and_the_cli():
    from importlib.metadata import entry_points

    scripts = {
        ep.name for ep in entry_points(group="console_scripts") if ep.value.startswith("vla_ros")
    }
    assert scripts == INTERFACE_EXECUTABLES | {"speech_node", "vla-ros"}
    assert {spec.executable for spec in graph.nodes(with_simulator=True)} == INTERFACE_EXECUTABLES
    assert {spec.executable for spec in graph.nodes(True, with_speech=True)} == scripts - {
        "vla-ros"
    }


@pytest.mark.parametrize("launch_file", sorted((REPO / "launch").glob("*.launch.py")))
def test_launch_files_are_built_from_the_node_graph(launch_file):
    tree = ast.parse(launch_file.read_text())
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    assert "node_actions" in names  # nodes come from vla_ros.graph, not a copy of it
    assert ast.get_docstring(tree)


def test_ros_arguments_start_a_node_with_files_values_and_remaps(tmp_path):
    args = graph.ros_arguments(
        [tmp_path / "a.yaml"],
        {"use_sim_time": True, "task": "go to the red cube", "rate": 5.0, "names": ["a", "b"]},
        {"/cmd_vel": "/robot/cmd_vel"},
        log_level="warn",
    )
    assert args == [
        "--ros-args",
        "--params-file",
        str(tmp_path / "a.yaml"),
        "-p",
        "use_sim_time:=true",
        "-p",
        "task:='go to the red cube'",
        "-p",
        "rate:=5.0",
        "-p",
        "names:=['a', 'b']",
        "-r",
        "/cmd_vel:=/robot/cmd_vel",
        "--log-level",
        "warn",
    ]


def test_unknown_scene_lists_the_known_ones():
    with pytest.raises(ValueError, match="mobile"):
        graph.scene_config("mars")


def test_ros_2_run_finds_the_vla_ros_program(colcon_install, tmp_path):
    """`ros2 run vla_ros vla-ros ...` runs lib/vla_ros/vla-ros, with the install's Python path."""
    program = colcon_install / "lib" / "vla_ros" / "vla-ros"
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    result = subprocess.run(
        [str(program), "sim", "--help"],
        env={**os.environ, "PYTHONPATH": str(site), "AMENT_PREFIX_PATH": str(colcon_install)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "--command" in result.stdout


# rosdep keys of the Python modules that apt's ROS 2 installs provide
ROSDEP_KEYS = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml"}


def _imported_modules(folders) -> set[str]:
    modules = set()
    for path in (p for folder in folders for p in folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def test_package_xml_lists_every_ros_package_the_code_imports():
    """Whatever a ROS wheel provides here comes from apt on a ROS install: rosdep must know it."""
    from importlib.metadata import packages_distributions

    from catkin_pkg.package import parse_package

    package = parse_package(str(REPO / "package.xml"))
    package.validate()
    declared = {dep.name for dep in package.exec_depends}
    provided_by = packages_distributions()
    imported = _imported_modules([REPO / "vla_ros", REPO / "launch"])
    ros = {m for m in imported if any(d.startswith("ros-") for d in provided_by.get(m, []))}
    assert ros >= {"rclpy", "sensor_msgs", "rcl_interfaces", "builtin_interfaces"}
    assert ros | {ROSDEP_KEYS[m] for m in imported & ROSDEP_KEYS.keys()} <= declared
