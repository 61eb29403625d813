"""Fusion strategies: vision, language and joint tokens -> one feature vector, behind one interface.

Every strategy takes `ModalityTokens` and returns `FusionOutput(features, vision_attention, ...)`.
`vision_attention` is (B, T_vision), summing to 1 over the vision tokens, where the strategy has
attention over the picture (cross_attention, transformer, pointer); reshaped to the encoder's grid
it can be drawn over the image. The pointer fusion also says where the named object is
(`target_logits` over the tokens, `target_position` in picture coordinates).

Dropout sits only in the output MLPs: that is what MC dropout samples.
Attention is written out (not `nn.MultiheadAttention`) so that its weights are returned and it runs
under `torch.func.vmap` with no fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vla_ros.model.config import FusionConfig, FusionKind


@dataclass(frozen=True)
class ModalityTokens:
    vision: torch.Tensor  # (B, Tv, d)
    language: torch.Tensor  # (B, Tl, d)
    language_mask: torch.Tensor  # (B, Tl) bool, True where a real token is
    language_pooled: torch.Tensor  # (B, d)
    proprio: torch.Tensor  # (B, 1, d)


@dataclass(frozen=True)
class FusionOutput:
    features: torch.Tensor  # (B, hidden)
    vision_attention: torch.Tensor | None  # (B, Tv) or None
    target_logits: torch.Tensor | None = None  # (B, Tv): which token holds the named object
    target_position: torch.Tensor | None = None  # (B, 2) its expected (x, y) in [-1, 1]


def mlp(inputs: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden)
    )


class Attention(nn.Module):
    """Multi-head attention that also returns its weights (B, heads, Tq, Tk)."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length, width = queries.shape
        head_width = width // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(batch, -1, self.heads, head_width).transpose(1, 2)

        key, value = self.key_value(keys).chunk(2, dim=-1)
        scores = split(self.query(queries)) @ split(key).transpose(-1, -2) / math.sqrt(head_width)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        mixed = (weights @ split(value)).transpose(1, 2).reshape(batch, length, width)
        return self.out(mixed), weights


def _masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class ConcatFusion(nn.Module):
    """Early fusion: every vision token, the sentence and the joints side by side, then an MLP."""

    def __init__(self, config: FusionConfig, vision_tokens: int) -> None:
        super().__init__()
        self.net = mlp((vision_tokens + 2) * config.d_model, config.hidden, config.dropout)

    def forward(self, tokens: ModalityTokens) -> FusionOutput:
        flat = torch.cat(
            [tokens.vision.flatten(1), tokens.language_pooled, tokens.proprio.flatten(1)], dim=-1
        )
        return FusionOutput(self.net(flat), None)


class LateFusion(nn.Module):
    """One MLP per modality; their outputs are mixed with learned softmax weights."""

    def __init__(self, config: FusionConfig, vision_tokens: int) -> None:
        super().__init__()
        d, hidden, p = config.d_model, config.hidden, config.dropout
        self.vision = mlp(vision_tokens * d, hidden, p)
        self.language = mlp(d, hidden, p)
        self.proprio = mlp(d, hidden, p)
        self.logits = nn.Parameter(torch.zeros(3))

    def modality_weights(self) -> torch.Tensor:
        """(vision, language, proprio) weights, summing to 1."""
        return self.logits.softmax(dim=0)

    def forward(self, tokens: ModalityTokens) -> FusionOutput:
        parts = torch.stack(
            [
                self.vision(tokens.vision.flatten(1)),
                self.language(tokens.language_pooled),
                self.proprio(tokens.proprio.flatten(1)),
            ],
            dim=1,
        )
        return FusionOutput((parts * self.modality_weights()[:, None]).sum(1), None)


class GatedFusion(nn.Module):
    """FiLM: the sentence and the joints scale and shift every vision feature, then an MLP."""

    def __init__(self, config: FusionConfig, vision_tokens: int) -> None:
        super().__init__()
        d = config.d_model
        self.film = nn.Linear(2 * d, 2 * d)
        nn.init.zeros_(self.film.weight)  # start as the identity modulation
        nn.init.zeros_(self.film.bias)
        self.net = mlp((vision_tokens + 2) * d, config.hidden, config.dropout)

    def forward(self, tokens: ModalityTokens) -> FusionOutput:
        context = torch.cat([tokens.language_pooled, tokens.proprio.flatten(1)], dim=-1)
        scale, shift = self.film(context).unsqueeze(1).chunk(2, dim=-1)
        vision = tokens.vision * (1.0 + scale) + shift
        return FusionOutput(self.net(torch.cat([vision.flatten(1), context], dim=-1)), None)


class CrossAttentionFusion(nn.Module):
    """Vision tokens attend to the words, then the words attend to the updated vision tokens."""

    def __init__(self, config: FusionConfig, vision_tokens: int) -> None:
        super().__init__()
        d = config.d_model
        self.vision_norm = nn.LayerNorm(d)
        self.language_norm = nn.LayerNorm(d)
        self.vision_to_language = Attention(d, config.heads)
        self.language_to_vision = Attention(d, config.heads)
        self.net = mlp((vision_tokens + 2) * d, config.hidden, config.dropout)

    def forward(self, tokens: ModalityTokens) -> FusionOutput:
        language = self.language_norm(tokens.language)
        update, _ = self.vision_to_language(
            self.vision_norm(tokens.vision), language, tokens.language_mask
        )
        vision = tokens.vision + update
        update, weights = self.language_to_vision(language, self.vision_norm(vision))
        language = tokens.language + update
        sentence = _masked_mean(language, tokens.language_mask)
        # where the words looked: mean over heads and real words
        attention = _masked_mean(weights.mean(1), tokens.language_mask)
        flat = torch.cat([vision.flatten(1), sentence, tokens.proprio.flatten(1)], dim=-1)
        return FusionOutput(self.net(flat), attention)


class TransformerBlock(nn.Module):
    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = Attention(d_model, heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = self.norm1(x)
        update, weights = self.attention(normed, normed, mask)
        x = x + update
        return x + self.mlp(self.norm2(x)), weights


class TransformerFusion(nn.Module):
    """[summary, vision..., words..., joints] with type embeddings through self-attention blocks;
    the summary token's output is the fused feature."""

    def __init__(self, config: FusionConfig, vision_tokens: int) -> None:
        super().__init__()
        d = config.d_model
        self.summary = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.types = nn.Parameter(torch.randn(4, d) * 0.02)  # summary, vision, language, proprio
        self.blocks = nn.ModuleList(TransformerBlock(d, config.heads) for _ in range(config.blocks))
        self.norm = nn.LayerNorm(d)
        self.net = mlp(d, config.hidden, config.dropout)

    def forward(self, tokens: ModalityTokens) -> FusionOutput:
        batch, vision_count = tokens.vision.shape[:2]
        x = torch.cat(
            [
                self.summary.expand(batch, -1, -1) + self.types[0],
                tokens.vision + self.types[1],
                tokens.language + self.types[2],
                tokens.proprio + self.types[3],
            ],
            dim=1,
        )
        always = torch.ones(batch, 1 + vision_count, dtype=torch.bool, device=x.device)
        mask = torch.cat([always, tokens.language_mask, always[:, :1]], dim=1)
        weights = None
        for block in self.blocks:
            x, weights = block(x, mask)
        # where the summary token looked in the last block, over the picture only
        attention = weights.mean(1)[:, 0, 1 : 1 + vision_count]
        attention = attention / attention.sum(-1, keepdim=True).clamp(min=1e-12)
        return FusionOutput(self.net(self.norm(x[:, 0])), attention)


def token_centres(grid: tuple[int, int]) -> torch.Tensor:
    """(rows * cols, 2) the (x, y) centre of each token in [-1, 1] picture coordinates, in the
    row-major order the encoders flatten their maps in."""
    rows, cols = grid
    y = (torch.arange(rows) + 0.5) / rows * 2.0 - 1.0
    x = (torch.arange(cols) + 0.5) / cols * 2.0 - 1.0
    return torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1).reshape(-1, 2)


class PointerFusion(nn.Module):
    """The sentence points at the picture, and the action head sees only what it points at.

    Each of `heads` queries, made from the sentence, scores every picture token; a softmax over
    the tokens gives where it points, its expected position and the feature there. The action
    head reads those (positions, features, how peaked each map is), the sentence and the joints,
    never the whole picture: an action can only depend on the picture through what the command
    selected. Head 0 is trained to point at the named object (`target_logits`), the others are
    free. The gated fusion, which sees every token, learnt to ignore the command on scenes where
    colour and shape must both be read (docs/models.md, "Compositional scenes").
    """

    def __init__(self, config: FusionConfig, vision_tokens: int, grid: tuple[int, int]) -> None:
        super().__init__()
        if grid[0] * grid[1] != vision_tokens:
            raise ValueError(
                f"fusion.kind pointer needs picture tokens on a grid, got {vision_tokens} tokens "
                f"for a {grid[0]}x{grid[1]} grid"
            )
        d, heads = config.d_model, config.heads
        self.heads = heads
        self.register_buffer("centres", token_centres(grid))
        self.query = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, heads * d))
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.net = mlp(heads * (d + 4) + 2 * d, config.hidden, config.dropout)

    def forward(self, tokens: ModalityTokens) -> FusionOutput:
        batch, _, d = tokens.vision.shape
        queries = self.query(tokens.language_pooled).view(batch, self.heads, d)
        scores = queries @ self.key(tokens.vision).transpose(1, 2) / math.sqrt(d)  # (B, H, Tv)
        weights = scores.softmax(dim=-1)
        positions = weights @ self.centres  # (B, H, 2)
        attended = weights @ self.value(tokens.vision)  # (B, H, d)
        # how sure each head is that what it looks for is in the picture, and in one place
        peaks = torch.stack([scores.logsumexp(-1), weights.amax(-1)], dim=-1)
        flat = torch.cat(
            [
                positions.flatten(1),
                attended.flatten(1),
                peaks.flatten(1),
                tokens.language_pooled,
                tokens.proprio.flatten(1),
            ],
            dim=-1,
        )
        return FusionOutput(self.net(flat), weights[:, 0], scores[:, 0], positions[:, 0])


_FUSIONS: dict[FusionKind, type[nn.Module]] = {
    FusionKind.CONCAT: ConcatFusion,
    FusionKind.LATE: LateFusion,
    FusionKind.GATED: GatedFusion,
    FusionKind.CROSS_ATTENTION: CrossAttentionFusion,
    FusionKind.TRANSFORMER: TransformerFusion,
}


def build_fusion(
    config: FusionConfig, vision_tokens: int, grid: tuple[int, int] | None = None
) -> nn.Module:
    """`grid`: the (rows, cols) the vision tokens tile the picture with, where they do; the
    pointer fusion needs it."""
    if config.kind is FusionKind.POINTER:
        if grid is None:
            raise ValueError(
                "fusion.kind pointer needs picture tokens that tile the picture (the cnn, or a "
                "backbone's patch tokens)"
            )
        return PointerFusion(config, vision_tokens, grid)
    return _FUSIONS[config.kind](config, vision_tokens)
