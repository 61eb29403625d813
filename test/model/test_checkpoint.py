import json

import numpy as np
import pytest
import torch

from vla_ros.model import CheckpointError, build_policy, load_policy, save_policy
from vla_ros.model.checkpoint import WEIGHTS_FILE, resolve_device
from vla_ros.model.config import CONFIG_FILE, FORMAT_VERSION


def same_proposals(a, b, observation):
    for _ in range(2):
        pa, pb = a.select_action(observation), b.select_action(observation)
        np.testing.assert_allclose(pa.action, pb.action, rtol=1e-5, atol=1e-6)
        assert pa.uncertainty == pytest.approx(pb.uncertainty, rel=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "fusion.kind": "transformer",
            "memory.kind": "gru",
            "chunk.size": 3,
            "chunk.replan_every": 2,
            "uncertainty.variance_head": True,
            "uncertainty.error_model": True,
            "uncertainty.mc_samples": 4,
            "fusion.dropout": 0.0001,
        },
        {"fusion.kind": "cross_attention", "uncertainty.ensemble": 1},
        {"fusion.kind": "gated"},
        {"fusion.kind": "late"},
    ],
)
def test_round_trip_gives_the_same_policy(
    tiny_config, text_encoder, observation, tmp_path, overrides
):
    policy = build_policy(tiny_config(overrides), text=text_encoder)
    save_policy(policy, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    loaded = load_policy(tmp_path)
    assert loaded.config == policy.config
    if policy.mc_samples:  # sampling: compare with dropout this small, outputs nearly equal
        a, b = policy.select_action(observation), loaded.select_action(observation)
        np.testing.assert_allclose(a.action, b.action, atol=1e-2)
    else:
        same_proposals(policy, loaded, observation)


@pytest.mark.parametrize("tokens", ["patch", "pooled"])
def test_frozen_hf_backbone_is_referenced_not_copied(
    tiny_config, text_encoder, tiny_clip, observation, tmp_path, tokens
):
    config = tiny_config(
        {
            "vision.kind": "hf",
            "vision.pretrained": tiny_clip["full"],
            "vision.tokens": tokens,
            "vision.mean": None,
            "vision.std": None,
        }
    )
    policy = build_policy(config, text=text_encoder)
    save_policy(policy, tmp_path)
    from safetensors.torch import load_file

    assert not any(k.startswith("backbone.") for k in load_file(tmp_path / WEIGHTS_FILE))
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["vision"]["mean"] is not None
    same_proposals(policy, load_policy(tmp_path), observation)


@pytest.mark.parametrize("how", ["random_init", "finetune"])
def test_random_or_finetuned_backbone_is_embedded(
    tiny_config, text_encoder, tiny_clip, observation, tmp_path, how
):
    from vla_ros.model.config import VisionConfig, VisionKind
    from vla_ros.model.encoders import load_vision_backbone

    if how == "random_init":
        _, hf = load_vision_backbone(
            VisionConfig(kind=VisionKind.HF, pretrained=tiny_clip["vision"]), (32, 32)
        )
        overrides = {"vision.kind": "hf", "vision.hf_config": hf}
    else:
        overrides = {
            "vision.kind": "hf",
            "vision.pretrained": tiny_clip["vision"],
            "vision.finetune": True,
        }
    policy = build_policy(tiny_config(overrides), text=text_encoder)
    with torch.no_grad():  # as if trained: the saved weights must be these, not the source's
        for p in policy.model.backbone.parameters():
            p.add_(0.01)
    save_policy(policy, tmp_path)
    saved = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert saved["vision"]["hf_config"]["model_type"] == "clip_vision_model"
    same_proposals(policy, load_policy(tmp_path), observation)


@pytest.mark.parametrize("text", ["clip_text", "clip_full"])
def test_clip_text_tower_round_trip(tiny_config, tiny_clip, observation, tmp_path, text):
    config = tiny_config(
        {"text.pretrained": tiny_clip[text.removeprefix("clip_")], "text.pooling": "pooler"}
    )
    policy = build_policy(config)
    save_policy(policy, tmp_path)
    same_proposals(policy, load_policy(tmp_path), observation)


@pytest.fixture
def saved(tiny_config, text_encoder, tmp_path):
    save_policy(build_policy(tiny_config(), text=text_encoder), tmp_path)
    return tmp_path


def test_missing_files_say_what_to_do(saved):
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match=f"{WEIGHTS_FILE} is missing"):
        load_policy(saved)
    (saved / CONFIG_FILE).unlink()
    with pytest.raises(CheckpointError, match="not a vla_ros checkpoint"):
        load_policy(saved)


def test_bad_json_and_format_version_are_named(saved):
    path = saved / CONFIG_FILE
    data = json.loads(path.read_text())
    data["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"format version .* re-train"):
        load_policy(saved)
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_policy(saved)


def test_invalid_config_value_is_named(saved):
    path = saved / CONFIG_FILE
    data = json.loads(path.read_text())
    data["fusion"]["kind"] = "bogus"
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"config.json: config.fusion.kind: 'bogus'"):
        load_policy(saved)


def test_corrupt_weights_are_named(saved):
    path = saved / WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_policy(saved)


def test_missing_key_and_wrong_shape_are_named(saved):
    from safetensors.torch import load_file, save_file

    path = saved / WEIGHTS_FILE
    weights = load_file(path)
    del weights["ensemble.stacked.mean.bias"]
    weights["ensemble.stacked.head.0.weight"] = torch.zeros(3, 3)
    save_file(weights, path)
    with pytest.raises(
        CheckpointError,
        match=r"missing: ensemble.stacked.mean.bias.*wrong shape: ensemble.stacked.head.0.weight",
    ):
        load_policy(saved)


def test_config_from_another_model_is_named(saved, tiny_config):
    tiny_config({"fusion.hidden": 48}).save(saved)
    with pytest.raises(CheckpointError, match="does not match"):
        load_policy(saved)


def test_unknown_names_and_offline_hub_ids_are_explained(monkeypatch):
    with pytest.raises(CheckpointError, match=r"shipped name: .*mobile"):
        load_policy("no_such_checkpoint")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="HF_HUB_OFFLINE"):
        load_policy("someone/some-vla")


def test_shipped_default_loads_and_acts(observation):
    policy = load_policy("")
    assert policy.action_names == ("linear_x", "angular_z")
    assert policy.joint_names == ("left_wheel_joint", "right_wheel_joint")
    assert policy.config.image_size == (64, 64)
    proposal = policy.select_action(observation)
    assert np.all(np.isfinite(proposal.action)) and np.isfinite(proposal.uncertainty)
    assert load_policy("mobile").config == policy.config


def test_nan_checkpoint_from_the_public_api_gives_non_finite_actions(
    tiny_config, text_encoder, observation, tmp_path
):
    policy = build_policy(tiny_config(), text=text_encoder)
    with torch.no_grad():
        for param in policy.model.parameters():
            param.fill_(float("nan"))
    save_policy(policy, tmp_path)
    proposal = load_policy(tmp_path).select_action(observation)
    assert not np.any(np.isfinite(proposal.action)) and not np.isfinite(proposal.uncertainty)


def test_device_choice():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(CheckpointError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(CheckpointError, match="no CUDA"):
            resolve_device("cuda")
