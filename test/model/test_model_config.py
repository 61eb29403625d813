import json

import pytest

from vla_ros.model.config import (
    FORMAT_VERSION,
    FusionKind,
    ModelConfig,
    VisionKind,
    default_mobile_config,
)


def test_json_round_trip_keeps_every_field():
    config = default_mobile_config().with_overrides(
        {
            "fusion.kind": "transformer",
            "memory.kind": "gru",
            "chunk.size": 4,
            "chunk.replan_every": 2,
        }
    )
    again = ModelConfig.from_dict(json.loads(config.to_json()))
    assert again == config
    assert again.fusion.kind is FusionKind.TRANSFORMER
    assert json.loads(config.to_json())["format_version"] == FORMAT_VERSION


def test_mobile_defaults_are_issue_2s_policy():
    config = default_mobile_config()
    assert config.action_names == ("linear_x", "angular_z")
    assert config.joint_names == ("left_wheel_joint", "right_wheel_joint")
    assert config.image_size == (64, 64)
    assert config.vision.kind is VisionKind.CNN
    assert config.fusion.kind is FusionKind.GATED
    assert not config.proprio.positions and not config.proprio.velocities  # wheels: no features
    assert config.uncertainty.ensemble > 1 and config.uncertainty.novelty


def test_overrides_read_strings_as_json_like_a_command_line():
    config = default_mobile_config().with_overrides(
        {"uncertainty.ensemble": "3", "vision.channels": "[8, 16]", "proprio.velocities": "false"}
    )
    assert config.uncertainty.ensemble == 3
    assert config.vision.channels == (8, 16)
    assert config.proprio.velocities is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fusion.kind": "bogus"}, "not one of"),
        ({"chunk.size": 2, "chunk.replan_every": 3}, "replan_every"),
        ({"fusion.dropout": 0.0, "uncertainty.mc_samples": 8}, "dropout"),
        ({"uncertainty.mc_samples": 1}, "mc_samples"),
        ({"fusion.d_model": 30, "fusion.heads": 4}, "divisible"),
        ({"image_size": [60, 64]}, "multiple"),
        ({"uncertainty.coverage": 1.0}, "coverage"),
        ({"action_stats": {"low": [0.0], "high": [1.0]}}, "channels"),
        ({"vision.kind": "hf"}, "pretrained"),
        ({"uncertainty.ensemble": 1.5}, "expected int"),
    ],
)
def test_invalid_settings_are_refused_with_the_reason(overrides, message):
    with pytest.raises(ValueError, match=message):
        default_mobile_config().with_overrides(overrides)


def test_unknown_keys_are_refused():
    with pytest.raises(KeyError, match="unknown config key"):
        default_mobile_config().with_overrides({"fusion.colour": "red"})
    data = default_mobile_config().to_dict()
    data["surprise"] = 1
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict(data)


def test_another_format_version_is_refused():
    data = default_mobile_config().to_dict()
    data["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="format version"):
        ModelConfig.from_dict(data)


def test_uncalibrated_defaults_follow_the_chunk_size():
    config = default_mobile_config().with_overrides({"chunk.size": 3})
    assert config.conformal.quantiles == (1.0, 1.0, 1.0)
    assert not config.conformal.calibrated
