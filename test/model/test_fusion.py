import pytest
import torch

from vla_ros.model.config import FusionConfig, FusionKind
from vla_ros.model.fusion import ModalityTokens, build_fusion, token_centres

VISION_TOKENS = 6
GRID = (2, 3)


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
        FusionConfig(kind=kind, d_model=16, hidden=24, heads=2, blocks=2), VISION_TOKENS, GRID
    )
    inputs = tokens(requires_grad=True)
    out = fusion(inputs)
    assert out.features.shape == (3, 24)
    out.features.square().sum().backward()
    assert all(p.grad is not None for p in fusion.parameters())
    assert inputs.vision.grad.abs().sum() > 0 and inputs.proprio.grad.abs().sum() > 0
    language_grad = (
        inputs.language_pooled.grad
        if kind in (FusionKind.CONCAT, FusionKind.LATE, FusionKind.GATED, FusionKind.POINTER)
        else inputs.language.grad
    )
    assert language_grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kind", [FusionKind.CROSS_ATTENTION, FusionKind.TRANSFORMER, FusionKind.POINTER]
)
def test_attention_fusions_expose_a_map_over_the_picture_and_ignore_padding(kind):
    torch.manual_seed(0)
    fusion = build_fusion(
        FusionConfig(kind=kind, d_model=16, hidden=24, heads=2), VISION_TOKENS, GRID
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


def test_token_centres_follow_the_row_major_order_of_the_encoders():
    centres = token_centres(GRID)
    assert centres.shape == (6, 2)
    # token 5 is row 1, column 2: right of centre, below it
    torch.testing.assert_close(centres[5], torch.tensor([2 / 3, 0.5]))
    torch.testing.assert_close(centres[0], torch.tensor([-2 / 3, -0.5]))


def test_the_pointer_points_where_its_scores_say_and_scores_each_token_by_its_content():
    torch.manual_seed(0)
    fusion = build_fusion(
        FusionConfig(kind=FusionKind.POINTER, d_model=16, hidden=24, heads=2), VISION_TOKENS, GRID
    ).eval()
    inputs = tokens()
    out = fusion(inputs)
    weights = out.target_logits.softmax(-1)
    torch.testing.assert_close(out.vision_attention, weights)
    torch.testing.assert_close(out.target_position, weights @ token_centres(GRID))
    # Each token is scored by what it holds: swapping two tokens' features swaps their scores.
    order = torch.tensor([5, 1, 2, 3, 4, 0])
    swapped = fusion(
        ModalityTokens(
            inputs.vision[:, order],
            inputs.language,
            inputs.language_mask,
            inputs.language_pooled,
            inputs.proprio,
        )
    )
    torch.testing.assert_close(swapped.target_logits, out.target_logits[:, order])


def test_the_pointer_needs_a_grid():
    config = FusionConfig(kind=FusionKind.POINTER, d_model=16, hidden=24, heads=2)
    with pytest.raises(ValueError, match="tile the picture"):
        build_fusion(config, VISION_TOKENS)
    with pytest.raises(ValueError, match="on a grid"):
        build_fusion(config, VISION_TOKENS, (2, 2))
