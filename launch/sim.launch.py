"""The vla_ros nodes plus the embedded MuJoCo simulator (headless).

ros2 launch vla_ros sim.launch.py scene:=mobile
ros2 topic pub --once /voice_command std_msgs/String "data: 'go to the red cube'"
Arguments: scene (mobile, arm, humanoid), params_file (default: the scene's config), use_sim_time
(default true: the simulator publishes /clock), namespace, log_level. The simulator takes its task
from /voice_command too, so one command sets both what the robot does and what counts as success.
"""

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from vla_ros.graph import SCENE_CONFIGS
from vla_ros.ros.launch import common_arguments, config_path, node_actions


def _nodes(context: LaunchContext) -> list[Node]:
    scene = LaunchConfiguration("scene").perform(context)
    params_file = LaunchConfiguration("params_file").perform(context)
    return node_actions(
        with_simulator=True,
        params_file=params_file or config_path(SCENE_CONFIGS[scene]),
        extra_parameters={"sim_node": {"scene": scene}},
    )


def generate_launch_description() -> LaunchDescription:
    arguments = common_arguments("vla.yaml", use_sim_time=True)
    arguments[0] = DeclareLaunchArgument(
        "params_file",
        default_value="",
        description="ROS parameter YAML for every node (empty: the scene's own config)",
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "scene",
                default_value="mobile",
                choices=sorted(SCENE_CONFIGS),
                description="Simulated robot and world",
            ),
            *arguments,
            OpaqueFunction(function=_nodes),
        ]
    )
