import pytest
import torch

from vla_ros.model.config import TextConfig, TextPooling, VisionConfig, VisionKind, VisionTokens
from vla_ros.model.encoders import (
    ProprioEncoder,
    SmallCNN,
    TextEncoder,
    load_vision_backbone,
)


def test_small_cnn_gives_one_token_per_cell_and_gradients():
    cnn = SmallCNN(VisionConfig(channels=(8, 16, 32)), (64, 48), d_model=24)
    images = torch.randn(2, 3, 64, 48)
    tokens = cnn(images)
    assert cnn.grid == (4, 3) and tokens.shape == (2, 12, 24)
    tokens.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cnn.parameters())


@pytest.mark.parametrize(
    ("tokens", "count", "grid"),
    [(VisionTokens.PATCH, 16, (4, 4)), (VisionTokens.CLS, 1, None), (VisionTokens.POOLED, 1, None)],
)
@pytest.mark.parametrize("folder", ["vision", "full"])
def test_hf_vision_backbone_from_a_saved_folder(tiny_clip, folder, tokens, count, grid):
    config = VisionConfig(kind=VisionKind.HF, pretrained=tiny_clip[folder], tokens=tokens)
    backbone, hf_config = load_vision_backbone(config, (32, 32))
    out = backbone(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, count, 32)
    assert (backbone.count, backbone.grid) == (count, grid)
    assert hf_config["model_type"] == "clip_vision_model"
    assert not any(p.requires_grad for p in backbone.parameters())  # frozen unless finetune


def test_hf_vision_backbone_random_init_from_its_config_and_finetune(tiny_clip):
    _, hf_config = load_vision_backbone(
        VisionConfig(kind=VisionKind.HF, pretrained=tiny_clip["vision"]), (32, 32)
    )
    config = VisionConfig(kind=VisionKind.HF, hf_config=hf_config, finetune=True)
    backbone, _ = load_vision_backbone(config, (32, 32))
    backbone(torch.randn(1, 3, 32, 32)).sum().backward()
    assert all(p.requires_grad for p in backbone.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.parameters())


def test_vit_backbone_works_too(tmp_path):
    from transformers import ViTConfig, ViTModel

    ViTModel(
        ViTConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        )
    ).save_pretrained(tmp_path)
    backbone, _ = load_vision_backbone(
        VisionConfig(kind=VisionKind.HF, pretrained=str(tmp_path)), (32, 32)
    )
    assert backbone(torch.randn(1, 3, 32, 32)).shape == (1, 16, 32) and backbone.grid == (4, 4)


@pytest.mark.parametrize("which", ["bert", "clip_text", "clip_full"])
def test_text_encoders_pool_and_cache(tiny_bert, tiny_clip, which):
    folder = {"bert": tiny_bert, "clip_text": tiny_clip["text"], "clip_full": tiny_clip["full"]}[
        which
    ]
    pooling = TextPooling.MEAN if which == "bert" else TextPooling.POOLER
    text = TextEncoder(TextConfig(pretrained=folder, pooling=pooling, max_tokens=8))
    batch = text.encode(["go to the red cube", "stop"])
    assert batch.tokens.shape == (2, 8, 32) and batch.pooled.shape == (2, 32)
    assert batch.mask[1].sum() < batch.mask[0].sum()
    torch.testing.assert_close(batch.pooled.norm(dim=-1), torch.ones(2))
    calls = []
    text.model.register_forward_hook(lambda *args: calls.append(1))
    first = text.embed("go to the red cube")
    for _ in range(5):
        assert text.embed("go to the red cube") is first
    text.embed("go to the blue cube")
    assert len(calls) == 2  # once per distinct instruction


def test_proprio_encoder_is_one_token():
    assert ProprioEncoder(4, 16)(torch.randn(3, 4)).shape == (3, 1, 16)


def test_hf_backbone_refuses_a_picture_size_it_cannot_take(tiny_clip):
    config = VisionConfig(kind=VisionKind.HF, pretrained=tiny_clip["vision"])
    with pytest.raises(ValueError, match="does not take 64x64 pictures"):
        load_vision_backbone(config, (64, 64))
