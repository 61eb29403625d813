"""The full control graph, for tests that need the fusion node."""

import pytest
from robot_standin import RobotStandIn


@pytest.fixture
def control_graph(ros):
    """Every control node in one graph (shipped checkpoint), plus a robot stand-in."""
    from vla_ros.nodes.camera_node import CameraNode
    from vla_ros.nodes.fusion_node import FusionNode
    from vla_ros.nodes.joint_state_node import JointStateNode
    from vla_ros.nodes.safety_node import SafetyNode
    from vla_ros.nodes.voice_command_node import VoiceCommandNode

    def build(fusion=None, safety=None, robot=True):
        for node in (CameraNode, JointStateNode, VoiceCommandNode):
            ros.add(node)
        ros.add(SafetyNode, safety)
        fusion_node = ros.add(FusionNode, fusion)
        return fusion_node, RobotStandIn(ros) if robot else None

    return build
