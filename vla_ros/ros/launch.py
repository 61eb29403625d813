"""Launch actions built from the node graph (vla_ros.graph), shared by the launch files.

Needs a full ROS 2 install (`launch`, `launch_ros`); nothing else in the package imports it.
"""

from __future__ import annotations

from collections.abc import Mapping

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitution import Substitution
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from vla_ros import graph

PACKAGE = "vla_ros"


def config_path(file_name: str) -> PathJoinSubstitution:
    return PathJoinSubstitution([FindPackageShare(PACKAGE), "config", file_name])


def common_arguments(default_params_file: str, use_sim_time: bool) -> list[DeclareLaunchArgument]:
    return [
        DeclareLaunchArgument(
            "params_file",
            default_value=config_path(default_params_file),
            description="ROS parameter YAML for every vla_ros node",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="true" if use_sim_time else "false",
            choices=["true", "false"],
            description="Follow /clock instead of the wall clock",
        ),
        DeclareLaunchArgument(
            "namespace",
            default_value="",
            description="Namespace for every node, its topics and services (e.g. robot1): "
            "two robots share one graph under two namespaces",
        ),
        DeclareLaunchArgument(
            "safety",
            default_value="true",
            choices=["true", "false"],
            description="Start the safety node here (false: it runs on the robot and this "
            "computer runs the model; see docs/deployment.md)",
        ),
        DeclareLaunchArgument(
            "speech",
            default_value="false",
            choices=["true", "false"],
            description="Also start speech_node: spoken commands from the microphone",
        ),
        DeclareLaunchArgument(
            "log_level",
            default_value="info",
            choices=["debug", "info", "warn", "error"],
            description="Logging level of every node",
        ),
    ]


def node_actions(
    with_simulator: bool,
    params_file: Substitution | str | None = None,
    extra_parameters: Mapping[str, Mapping[str, Substitution | str]] | None = None,
) -> list[Node]:
    """One launch_ros Node per spec of the graph, sharing params_file, namespace, use_sim_time and
    log_level; speech_node only with speech:=true, the safety node unless safety:=false.

    `params_file` defaults to the `params_file` launch argument.
    """
    extra_parameters = extra_parameters or {}
    params_file = params_file or LaunchConfiguration("params_file")
    conditions = {
        "safety_node": IfCondition(LaunchConfiguration("safety")),
        graph.SPEECH_NODE.executable: IfCondition(LaunchConfiguration("speech")),
    }
    return [
        Node(
            package=PACKAGE,
            executable=spec.executable,
            name=spec.executable,
            namespace=LaunchConfiguration("namespace"),
            condition=conditions.get(spec.executable),
            output="screen",
            emulate_tty=True,
            parameters=[
                params_file,
                {"use_sim_time": LaunchConfiguration("use_sim_time")},
                dict(extra_parameters.get(spec.executable, {})),
            ],
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        )
        for spec in graph.nodes(with_simulator, with_speech=True)
    ]
