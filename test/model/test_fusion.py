import pytest
import torch

from vla_ros.model.config import FusionConfig, FusionKind
from vla_ros.model.fusion import ModalityTokens, build_fusion

VISION_TOKENS = 6


def tokens(batch=3, words=5, real=3, d=16, requires_grad=False):
    mask = torch.zeros(batch, words, dtype=torch.bool)
    mask[:, :real] = True
    parts = [
        torch.randn(batch, VISION_TOKENS, d),
        torch.randn(batch, words, d),
        torch.randn(batch, d),
        torch.randn(batch, 1, d),
    ]
    for part in parts:
        part.requires_grad_(requires_grad)
    return ModalityTokens(parts[0], parts[1], mask, parts[2], parts[3])


@pytest.mark.parametrize("kind", list(FusionKind))
def test_every_fusion_gives_features_and_gradients_to_every_input(kind):
    torch.manual_seed(0)
    fusion = build_fusion(
        FusionConfig(kind=kind, d_model=16, hidden=24, heads=2, blocks=2), VISION_TOKENS
    )
    inputs = tokens(requires_grad=True)
    out = fusion(inputs)
    assert out.features.shape == (3, 24)
    out.features.square().sum().backward()
    assert all(p.grad is not None for p in fusion.parameters())
    assert inputs.vision.grad.abs().sum() > 0 and inputs.proprio.grad.abs().sum() > 0
    language_grad = (
        inputs.language_pooled.grad
        if kind in (FusionKind.CONCAT, FusionKind.LATE, FusionKind.GATED)
        else inputs.language.grad
    )
    assert language_grad.abs().sum() > 0


@pytest.mark.parametrize("kind", [FusionKind.CROSS_ATTENTION, FusionKind.TRANSFORMER])
def test_attention_fusions_expose_a_map_over_the_picture_and_ignore_padding(kind):
    torch.manual_seed(0)
    fusion = build_fusion(
        FusionConfig(kind=kind, d_model=16, hidden=24, heads=2), VISION_TOKENS
    ).eval()
    inputs = tokens()
    out = fusion(inputs)
    assert out.vision_attention.shape == (3, VISION_TOKENS)
    torch.testing.assert_close(out.vision_attention.sum(-1), torch.ones(3))
    padded = inputs.language.clone()
    padded[:, 3:] = 100.0  # changing padding tokens must change nothing
    again = fusion(
        ModalityTokens(
            inputs.vision, padded, inputs.language_mask, inputs.language_pooled, inputs.proprio
        )
    )
    torch.testing.assert_close(again.features, out.features)


def test_late_fusion_weights_are_learned_and_sum_to_one():
    fusion = build_fusion(FusionConfig(kind=FusionKind.LATE, d_model=16, hidden=24), VISION_TOKENS)
    weights = fusion.modality_weights()
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
    assert fusion.logits.requires_grad
