"""The full control graph, for tests that need the fusion node."""

import pytest
from ros_harness import wait_until

from vla_ros.bench.feed import SyntheticRobot
from vla_ros.graph import ros_arguments


class RobotStandIn(SyntheticRobot):
    """The synthetic robot on the test's probe node, waiting for a listener before speaking."""

    def __init__(self, ros):
        super().__init__(ros.probe)
        self.ros = ros

    def say(self, text):
        assert wait_until(lambda: self.voice.get_subscription_count() > 0)
        super().say(text)

    def now(self):
        return self.node.get_clock().now().to_msg()


UNCERTAINTY_IGNORED = {"uncertainty_slowdown": 1e5, "uncertainty_stop": 1e6}


@pytest.fixture
def control_graph(ros):
    """Every control node in one graph (shipped checkpoint), plus a robot stand-in."""
    from vla_ros.nodes.camera_node import CameraNode
    from vla_ros.nodes.fusion_node import FusionNode
    from vla_ros.nodes.joint_state_node import JointStateNode
    from vla_ros.nodes.safety_node import SafetyNode
    from vla_ros.nodes.voice_command_node import VoiceCommandNode

    def build(fusion=None, safety=None, robot=True, fusion_process=False):
        """The fusion node runs in this process, or (fusion_process) as its own executable.

        The synthetic pictures are unlike the shipped policy's training data, so its uncertainty
        on them is whatever it is: the safety node's thresholds are set out of reach here, and
        scaling by uncertainty is tested on its own (test_safety_node.py).
        """
        for node in (CameraNode, JointStateNode, VoiceCommandNode):
            ros.add(node)
        ros.add(SafetyNode, {**UNCERTAINTY_IGNORED, **(safety or {})})
        if fusion_process:
            fusion_node = ros.start("fusion_node", ros_arguments([], fusion or {})[1:])
        else:
            fusion_node = ros.add(FusionNode, fusion)
        return fusion_node, RobotStandIn(ros) if robot else None

    return build
