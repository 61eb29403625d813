import numpy as np
import pytest
import torch

from vla_ros.model.config import ActionStats, ProprioConfig, ProprioStats
from vla_ros.model.processing import (
    ActionScaling,
    NormalizeImage,
    ProprioFeatures,
    ResizeImage,
    action_stats,
    proprio_stats,
)


def test_resize_gives_the_model_size_and_refuses_non_rgb():
    image = np.zeros((120, 160, 3), np.uint8)
    assert ResizeImage((64, 64))(image).shape == (64, 64, 3)
    with pytest.raises(ValueError, match="uint8 RGB"):
        ResizeImage((64, 64))(np.zeros((10, 10), np.uint8))


def test_normalize_maps_pixels_channel_first():
    images = np.zeros((2, 4, 5, 3), np.uint8)
    images[0] = 255
    out = NormalizeImage((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))(images)
    assert out.shape == (2, 3, 4, 5)
    assert torch.allclose(out[0], torch.ones(3, 4, 5)) and torch.allclose(
        out[1], -torch.ones(3, 4, 5)
    )


def test_proprio_wraps_angles_and_reads_missing_velocities_as_still():
    features = ProprioFeatures(
        ProprioConfig(wrap_positions=True, velocities=True), ProprioStats((0.0,) * 6, (1.0,) * 6)
    )
    raw = features.raw(np.array([[np.pi / 2, 0.0]]), None)
    np.testing.assert_allclose(raw, [[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]], atol=1e-6)
    stats = proprio_stats(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert stats.mean == (2.0, 5.0) and stats.std == (1.0, 1.0)  # constant feature: std 1
    normalised = ProprioFeatures(ProprioConfig(velocities=False), stats)(
        np.array([[3.0, 5.0]]), None
    )
    assert torch.allclose(normalised, torch.tensor([[1.0, 0.0]]))


def test_action_scaling_round_trips_and_keeps_a_margin():
    scaling = ActionScaling(ActionStats((-0.5, 0.0), (0.5, 2.0), margin=0.1))
    actions = np.array([[-0.5, 0.0], [0.5, 2.0], [0.1, 1.0]], np.float32)
    normalized = scaling.normalize(actions)
    assert np.all(np.abs(normalized) < 1.0)  # the data's extremes stay off tanh's asymptotes
    np.testing.assert_allclose(normalized[2, 1], 0.0, atol=1e-6)
    np.testing.assert_allclose(scaling.unnormalize(normalized), actions, atol=1e-6)


def test_clip_limits_to_the_trained_range_and_keeps_nan():
    scaling = ActionScaling(ActionStats((-0.5,), (0.5,)))
    out = scaling.clip(np.array([2.0, -2.0, np.nan]))
    assert out[0] == 0.5 and out[1] == -0.5 and np.isnan(out[2])


def test_action_stats_widen_a_constant_channel():
    stats = action_stats(np.array([[0.2, 1.0], [0.2, 3.0]]))
    assert stats.low[0] < 0.2 < stats.high[0]
    assert (stats.low[1], stats.high[1]) == (1.0, 3.0)


def test_proprio_refuses_the_wrong_number_of_joints():
    features = ProprioFeatures(ProprioConfig(), ProprioStats((0.0,) * 4, (1.0,) * 4))
    with pytest.raises(ValueError, match="joint_names order"):
        features(np.zeros((1, 3)), np.zeros((1, 3)))
