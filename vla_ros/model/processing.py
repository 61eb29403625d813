"""Pre- and post-processing steps between the policy contract and the network, one small step each.

Pre: resize the picture (the camera node's `resize_rgb`), scale and normalise its pixels, build the
proprioception vector and normalise it. Post: map the network's [-1, 1] actions to physical units
and clip them to the range seen in training. Training runs the same steps on batches, so the
network sees the same numbers in both places. Nothing here hides a NaN: it passes through to the
caller, which turns it into a stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vla_ros.logic.images import resize_rgb
from vla_ros.model.config import ActionStats, ProprioConfig, ProprioStats


@dataclass(frozen=True)
class ResizeImage:
    size: tuple[int, int]  # (height, width)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected an (H, W, 3) uint8 RGB picture, got {image.shape} {image.dtype}"
            )
        return resize_rgb(image, self.size)


@dataclass(frozen=True)
class NormalizeImage:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float: scaled to [0, 1], then (x - mean) / std."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        pixels = torch.as_tensor(images)
        if pixels.dtype != torch.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"expected (B, H, W, 3) uint8 pictures, got {tuple(pixels.shape)}")
        scaled = pixels.permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (scaled - mean) / std


@dataclass(frozen=True)
class ProprioFeatures:
    """Joint positions (optionally as sin and cos) and velocities -> one normalised vector."""

    config: ProprioConfig
    stats: ProprioStats

    def raw(self, positions: np.ndarray, velocities: np.ndarray | None) -> np.ndarray:
        """(B, J) positions and velocities -> (B, F) features before normalisation."""
        positions = np.asarray(positions, dtype=np.float32)
        parts = []
        if self.config.positions:
            if self.config.wrap_positions:
                parts += [np.sin(positions), np.cos(positions)]
            else:
                parts.append(positions)
        if self.config.velocities:
            parts.append(
                np.zeros_like(positions)
                if velocities is None
                else np.asarray(velocities, dtype=np.float32)
            )
        if not parts:
            return np.zeros((len(positions), 0), np.float32)
        return np.concatenate(parts, axis=1)

    def __call__(self, positions: np.ndarray, velocities: np.ndarray | None) -> torch.Tensor:
        features = torch.from_numpy(self.raw(positions, velocities))
        if features.shape[1] != len(self.stats.mean):
            raise ValueError(
                f"joint states give {features.shape[1]} proprioception features, the model "
                f"takes {len(self.stats.mean)}: pass the joints in the policy's joint_names order"
            )
        mean = torch.tensor(self.stats.mean, dtype=torch.float32)
        std = torch.tensor(self.stats.std, dtype=torch.float32)
        return (features - mean) / std


def proprio_stats(features: np.ndarray) -> ProprioStats:
    """Mean and std of raw features; constant features get std 1 (they carry no information)."""
    std = features.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0)
    return ProprioStats(tuple(map(float, features.mean(axis=0))), tuple(map(float, std)))


@dataclass(frozen=True)
class ActionScaling:
    """Physical units <-> the network's normalised units, per channel."""

    stats: ActionStats

    def _range(self) -> tuple[np.ndarray, np.ndarray]:
        low = np.asarray(self.stats.low, dtype=np.float64)
        high = np.asarray(self.stats.high, dtype=np.float64)
        pad = self.stats.margin * (high - low)
        return low - pad, high + pad

    def normalize(self, actions: np.ndarray) -> np.ndarray:
        low, high = self._range()
        return (2.0 * (np.asarray(actions) - low) / (high - low) - 1.0).astype(np.float32)

    def unnormalize(self, normalized: np.ndarray) -> np.ndarray:
        low, high = self._range()
        return (low + (np.asarray(normalized) + 1.0) * 0.5 * (high - low)).astype(np.float32)

    def clip(self, actions: np.ndarray) -> np.ndarray:
        """Clip to the trained range; NaN stays NaN so that the caller can see it."""
        return np.clip(actions, self.stats.low, self.stats.high).astype(np.float32)


def action_stats(actions: np.ndarray, margin: float = 0.05) -> ActionStats:
    """The per-channel range of (N, A) physical actions; a constant channel gets a unit range."""
    low, high = actions.min(axis=0).astype(np.float64), actions.max(axis=0).astype(np.float64)
    flat = high - low < 1e-6
    low, high = np.where(flat, low - 0.5, low), np.where(flat, high + 0.5, high)
    return ActionStats(tuple(map(float, low)), tuple(map(float, high)), margin)
