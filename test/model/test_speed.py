import numpy as np
import pytest
import torch

from vla_ros.model.checkpoint import build_policy, load_policy, save_policy
from vla_ros.model.speed import (
    BFLOAT16_TOLERANCE,
    COMPILE_TOLERANCE,
    QUANTIZE_TOLERANCE,
    compile_model,
    configure_threads,
    native_bfloat16,
    set_backbone_precision,
)


def normalised_actions(
    policy, observation, instructions=("go to the red cube", "go to the blue cube")
):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (len(instructions), *observation.image.shape), dtype=np.uint8)
    positions = np.zeros((len(instructions), 2), np.float32)
    return policy.predict(images, list(instructions), positions, None)[0].normalized


@pytest.fixture
def clip_checkpoint(tiny_config, text_encoder, tiny_clip, tmp_path):
    """A saved policy on the tiny CLIP vision tower."""
    config = tiny_config({"vision.kind": "hf", "vision.pretrained": tiny_clip["vision"]})
    return save_policy(build_policy(config, text=text_encoder), tmp_path)


def action_change(checkpoint, changed, observation) -> float:
    plain = load_policy(checkpoint)
    before, after = normalised_actions(plain, observation), normalised_actions(changed, observation)
    return float(np.abs(before - after).max())


def test_int8_backbone_changes_actions_less_than_the_tolerance(clip_checkpoint, observation):
    quantized = load_policy(clip_checkpoint, precision="int8")
    assert any("quantized" in type(m).__module__ for m in quantized.model.backbone.modules())
    assert action_change(clip_checkpoint, quantized, observation) < QUANTIZE_TOLERANCE


@pytest.mark.skipif(
    not native_bfloat16(torch.device("cpu")), reason="this CPU has no AVX512-BF16 or AMX"
)
def test_bfloat16_backbone_changes_actions_less_than_the_tolerance(clip_checkpoint, observation):
    half = load_policy(clip_checkpoint, precision="bfloat16")
    assert {p.dtype for p in half.model.backbone.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in half.model.ensemble.parameters()} == {torch.float32}
    with torch.inference_mode():
        tokens = half.model.backbone(torch.zeros(1, 3, *half.config.image_size))
    assert tokens.dtype == torch.float32
    # above 0: the arithmetic did change
    assert 0 < action_change(clip_checkpoint, half, observation) < BFLOAT16_TOLERANCE


@pytest.mark.parametrize(
    ("precision", "complaint"), [("int8", "backbone"), ("bfloat16", "backbone"), ("fp8", "unknown")]
)
def test_backbone_precisions_are_refused_where_they_cannot_apply(
    tiny_config, text_encoder, precision, complaint
):
    policy = build_policy(tiny_config(), text=text_encoder)  # the small CNN: no backbone
    with pytest.raises(ValueError, match=complaint):
        set_backbone_precision(policy, precision)
    set_backbone_precision(policy, "float32")  # as trained: always fine


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
