"""What ships fits together: each scene's config runs a checkpoint whose actions its safety node
publishes and whose joints its joint-state node provides."""

import pytest

from vla_ros import graph
from vla_ros.logic.safety import SafetyConfig
from vla_ros.model.checkpoint import read_config, resolve_checkpoint


@pytest.mark.parametrize("scene", sorted(graph.SCENE_CONFIGS))
def test_the_scene_config_runs_a_checkpoint_that_fits_its_robot(scene):
    safety = SafetyConfig.from_values(graph.scene_parameters(scene, "safety_node"))
    joints = graph.scene_parameters(scene, "joint_state_node")["joint_names"]
    model = read_config(
        resolve_checkpoint(graph.scene_parameters(scene, "fusion_node")["checkpoint"])
    )
    assert set(model.action_names) <= set(safety.channels)
    assert set(model.joint_names) <= set(joints)
    assert model.conformal.calibrated, "a shipped checkpoint publishes a calibrated uncertainty"
    assert model.training_instructions, "language novelty needs the training instructions"
