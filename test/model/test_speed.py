import numpy as np
import pytest
import torch

from vla_ros.model.checkpoint import build_policy, load_policy, save_policy
from vla_ros.model.speed import (
    COMPILE_TOLERANCE,
    QUANTIZE_TOLERANCE,
    compile_model,
    configure_threads,
    quantize_backbone,
)


def normalised_actions(
    policy, observation, instructions=("go to the red cube", "go to the blue cube")
):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (len(instructions), *observation.image.shape), dtype=np.uint8)
    positions = np.zeros((len(instructions), 2), np.float32)
    return policy.predict(images, list(instructions), positions, None)[0].normalized


def test_int8_backbone_changes_actions_less_than_the_tolerance(
    tiny_config, text_encoder, tiny_clip, observation, tmp_path
):
    config = tiny_config({"vision.kind": "hf", "vision.pretrained": tiny_clip["vision"]})
    save_policy(build_policy(config, text=text_encoder), tmp_path)
    plain = load_policy(tmp_path)
    quantized = load_policy(tmp_path, quantize=True)
    assert any("quantized" in type(m).__module__ for m in quantized.model.backbone.modules())
    difference = np.abs(
        normalised_actions(plain, observation) - normalised_actions(quantized, observation)
    )
    assert difference.max() < QUANTIZE_TOLERANCE


def test_quantize_needs_a_backbone(tiny_config, text_encoder):
    with pytest.raises(ValueError, match="backbone"):
        quantize_backbone(build_policy(tiny_config(), text=text_encoder))


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    # inductor builds C++ kernels: up to a minute on two cores, so it is in the slow set
    "backend",
    ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)],
)
def test_compiled_model_changes_actions_less_than_the_tolerance(
    tiny_config, text_encoder, observation, backend
):
    policy = build_policy(tiny_config({"fusion.kind": "transformer"}), text=text_encoder)
    before = normalised_actions(policy, observation)
    compile_model(policy, backend)
    after = normalised_actions(policy, observation)
    assert np.abs(before - after).max() < COMPILE_TOLERANCE


def test_threads_follow_the_cores_we_may_use():
    previous = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        assert configure_threads() >= 1
    finally:
        torch.set_num_threads(previous)
