"""The vla_ros nodes against a real robot: ros2 launch vla_ros vla.launch.py [params_file:=...]

Arguments: params_file (default: config/vla.yaml, a mobile base on /cmd_vel; use arm.yaml or
humanoid.yaml for joint control), namespace (e.g. robot1: every topic and service under it),
safety (false: the safety node runs on the robot, see docs/deployment.md), use_sim_time, log_level.
"""

from launch import LaunchDescription

from vla_ros.ros.launch import common_arguments, node_actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *common_arguments("vla.yaml", use_sim_time=False),
            *node_actions(with_simulator=False),
        ]
    )
