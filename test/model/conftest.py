"""Fixtures for the model tests: tiny random transformers models saved to disk and read back
through the real `from_pretrained` path (never a hub), and tiny model configs."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from synthetic_data import ACTIONS, JOINTS


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
