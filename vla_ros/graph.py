"""The node graph, described once.

The launch files, `vla-ros run`, `vla-ros sim` and the tests all build their processes from
these specs, so adding a node or changing how nodes are started happens here only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vla_ros import paths
from vla_ros.logic.params import DEFAULTS_FILE, node_parameters, read_parameter_file


@dataclass(frozen=True)
class NodeSpec:
    executable: str  # the console script, also the node's default name
    description: str

    @property
    def module(self) -> str:
        return f"vla_ros.nodes.{self.executable}"


CONTROL_NODES = (
    NodeSpec("camera_node", "checks and resizes camera pictures"),
    NodeSpec("voice_command_node", "normalises commands, hears stop words"),
    NodeSpec("joint_state_node", "orders and checks joint states"),
    NodeSpec("fusion_node", "runs the VLA policy at rate_hz"),
    NodeSpec("safety_node", "scales speed by uncertainty, watchdog, stop"),
)
SIM_NODE = NodeSpec("sim_node", "embedded MuJoCo simulator")
# Optional: speech to text on /voice_command (vla-ros sim --speech, launch argument speech:=true).
SPEECH_NODE = NodeSpec("speech_node", "on-device speech recognition, spoken stops")

# Each simulator scene with the parameter file that configures the robot for it.
SCENE_CONFIGS = {"mobile": "vla.yaml", "arm": "arm.yaml", "humanoid": "humanoid.yaml"}


def nodes(with_simulator: bool, with_speech: bool = False) -> tuple[NodeSpec, ...]:
    return (
        *CONTROL_NODES,
        *((SIM_NODE,) if with_simulator else ()),
        *((SPEECH_NODE,) if with_speech else ()),
    )


def scene_config(scene: str) -> Path:
    if scene not in SCENE_CONFIGS:
        raise ValueError(f"unknown scene {scene!r}; choose from {sorted(SCENE_CONFIGS)}")
    return paths.config_file(SCENE_CONFIGS[scene])


def scene_parameters(scene: str, node: str) -> dict[str, object]:
    """The values `node` runs with for `scene`: config/vla.yaml's, then the scene file's.

    What a node started with the scene's file ends up with, so code that emulates a node (the
    governed evaluation's safety layer) reads its settings from the same files.
    """
    defaults = node_parameters(read_parameter_file(paths.config_file(DEFAULTS_FILE)), node)
    return {**defaults, **node_parameters(read_parameter_file(scene_config(scene)), node)}


def ros_arguments(
    params_files: Sequence[Path],
    parameters: Mapping[str, object] = (),
    remappings: Mapping[str, str] = (),
    log_level: str | None = None,
    node: str | None = None,
    namespace: str = "",
) -> list[str]:
    """The `--ros-args ...` tail that starts a node with these files, values and remappings.

    A `namespace` ("/robot1") moves every topic and service of the node under it: the package's
    names are all relative, so two robots can share one graph.

    Name the `node` whenever a file has a section for it: a plain `-p name:=value` is a `/**`
    rule, and rcl lets a file's node section override `/**` rules (config/vla.yaml has both), so
    the value would be silently ignored; `-p node:name:=value` wins over the files as meant.
    """
    args = ["--ros-args"]
    for path in params_files:
        args += ["--params-file", str(path)]
    prefix = f"{node}:" if node else ""
    for name, value in dict(parameters).items():
        args += ["-p", f"{prefix}{name}:={_yaml_value(value)}"]
    if namespace:
        args += ["-r", f"__ns:={normalise_namespace(namespace)}"]
    for source, target in dict(remappings).items():
        args += ["-r", f"{source}:={target}"]
    if log_level:
        args += ["--log-level", log_level]
    return args


def _yaml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def normalise_namespace(namespace: str) -> str:
    """ "robot1" or "/robot1/" -> "/robot1"; ValueError for names ROS would refuse."""
    name = "/" + namespace.strip("/")
    parts = name[1:].split("/")
    if not all(part and (part[0].isalpha() or part[0] == "_") for part in parts) or not all(
        c.isalnum() or c == "_" for part in parts for c in part
    ):
        raise ValueError(
            f"invalid namespace {namespace!r}: use letters, digits and _, separated by /, "
            "each part starting with a letter or _"
        )
    return name
