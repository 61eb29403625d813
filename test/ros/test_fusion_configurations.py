"""Issue 3's promise: the fusion node runs any model configuration through `checkpoint` alone."""

import math

import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32

from vla_ros.ros import qos

pytestmark = pytest.mark.ros


def saved_checkpoint(folder, overrides):
    from vla_ros.model import build_policy, default_mobile_config, save_policy

    config = default_mobile_config().with_overrides(
        {"training_instructions": ["go to the red cube"], **overrides}
    )
    return str(save_policy(build_policy(config, seed=1), folder))


CONFIGURATIONS = {
    "transformer fusion, action chunks": {
        "fusion.kind": "transformer",
        "chunk.size": 4,
        "chunk.replan_every": 2,
    },
    "cross-attention, GRU memory, MC dropout": {
        "fusion.kind": "cross_attention",
        "memory.kind": "gru",
        "uncertainty.ensemble": 1,
        "uncertainty.mc_samples": 8,
    },
    "late fusion, variance head, error model": {
        "fusion.kind": "late",
        "uncertainty.variance_head": True,
        "uncertainty.error_model": True,
    },
}


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_fusion_node_runs_the_configuration(ros, control_graph, tmp_path, name):
    checkpoint = saved_checkpoint(tmp_path / "checkpoint", CONFIGURATIONS[name])
    proposals = ros.collect(JointState, "/vla/proposal", qos.LATEST)
    uncertainty = ros.collect(Float32, "/vla/uncertainty")
    _, robot = control_graph(fusion={"checkpoint": checkpoint})
    robot.say("go to the red cube")
    proposal = proposals.wait_for(lambda m: len(m.name) > 0, timeout=60.0)
    assert proposal is not None
    assert list(proposal.name) == ["linear_x", "angular_z"]
    # untrained and uncalibrated, so how sure it is varies: it only has to be a real number
    assert uncertainty.wait_for(lambda m: math.isfinite(m.data)) is not None


def native_bfloat16() -> bool:
    import torch

    from vla_ros.model.speed import native_bfloat16

    return native_bfloat16(torch.device("cpu"))


@pytest.mark.parametrize(
    "precision",
    [
        "float32",
        "int8",
        pytest.param(
            "bfloat16",
            marks=pytest.mark.skipif(not native_bfloat16(), reason="no AVX512-BF16 or AMX here"),
        ),
    ],
)
def test_fusion_node_runs_a_transformers_vision_backbone(
    ros, control_graph, tmp_path, tiny_clip, precision
):
    checkpoint = saved_checkpoint(
        tmp_path / "checkpoint",
        {
            "image_size": [32, 32],
            "vision.kind": "hf",
            "vision.pretrained": tiny_clip["vision"],
            "vision.mean": None,
            "vision.std": None,
            "fusion.kind": "gated",
            "uncertainty.ensemble": 2,
        },
    )
    proposals = ros.collect(JointState, "/vla/proposal", qos.LATEST)
    _, robot = control_graph(fusion={"checkpoint": checkpoint, "precision": precision})
    robot.say("go to the red cube")
    assert proposals.wait_for(lambda m: len(m.name) > 0, timeout=60.0) is not None
