"""The network: a shared part that runs once per step, and ensemble members run as one batched pass.

- Shared: the transformers vision backbone when there is one (frozen or fine-tuned, one copy for
  all members). The text encoder is shared too, but lives outside (its output is cached).
- `MemberNet`: everything that differs between ensemble members: the small CNN trunk (for the
  default model: that is what lets an ensemble notice a broken picture), the projections, the
  fusion, the memory and the action head. `MemberNet.forward` encodes once, then repeats the
  encoded tokens `samples` times along the batch, so MC dropout samples the post-encoder part in
  the same pass.
- `Ensemble`: M members' parameters stacked along a leading dimension, run with
  `torch.func.vmap(functional_call(...))`: one batched pass (grouped convolutions, batched
  matmuls) instead of M.
- `ErrorModel` (optional): predicts how large the action error is from a summary of what the
  members said (`error_features`); fitted after training on held-out episodes
  (`vla_ros.learn.calibration`), since on the training data the errors are too small to learn from.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from vla_ros.model.config import (
    WORST_CASE_ERROR,
    FusionKind,
    MemoryKind,
    ModelConfig,
    VisionKind,
)
from vla_ros.model.encoders import (
    ProprioEncoder,
    SmallCNN,
    TextEmbedding,
    VisionBackbone,
    VisionProjection,
)
from vla_ros.model.fusion import ModalityTokens, build_fusion

LOG_VAR_RANGE = (-12.0, 4.0)  # keeps the learned variance finite in float32
# predicted errors from 1e-4 up to the largest error two actions in [-1, 1] can have: the error
# model extrapolates on inputs unlike its data, and no prediction above that means anything
LOG_ERROR_RANGE = (-9.0, math.log(WORST_CASE_ERROR))


class GRUMemory(nn.Module):
    """A GRU cell written out, so that it batches under vmap."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.input = nn.Linear(width, 3 * width)
        self.hidden = nn.Linear(width, 3 * width)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        xr, xz, xn = self.input(x).chunk(3, dim=-1)
        hr, hz, hn = self.hidden(state).chunk(3, dim=-1)
        reset, update = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        candidate = torch.tanh(xn + reset * hn)
        return (1.0 - update) * candidate + update * state


class MemberNet(nn.Module):
    """One ensemble member: inputs -> normalised action chunk (B * samples, K, A) in [-1, 1]."""

    def __init__(
        self,
        config: ModelConfig,
        text_width: int,
        backbone_width: int | None,
        vision_tokens: int,
        grid: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        fusion, d = config.fusion, config.fusion.d_model
        if config.vision.kind is VisionKind.CNN:
            self.vision: nn.Module = SmallCNN(config.vision, config.image_size, d)
        else:
            self.vision = VisionProjection(backbone_width, d)
        self.language = nn.Linear(text_width, d)
        self.proprio = ProprioEncoder(config.proprio_dim, d)
        self.fusion = build_fusion(fusion, vision_tokens, grid)
        self.memory = GRUMemory(fusion.hidden) if config.memory.kind is MemoryKind.GRU else None
        self.head = nn.Sequential(
            nn.Linear(fusion.hidden, fusion.hidden), nn.GELU(), nn.Dropout(fusion.dropout)
        )
        self.chunk = (config.chunk.size, len(config.action_names))
        outputs = config.chunk.size * len(config.action_names)
        self.mean = nn.Linear(fusion.hidden, outputs)
        self.log_var = (
            nn.Linear(fusion.hidden, outputs) if config.uncertainty.variance_head else None
        )
        # the pointer fusion says where the named object is itself
        points = fusion.kind is FusionKind.POINTER
        self.grounding = (
            nn.Linear(fusion.hidden, 2) if config.grounding.weight > 0 and not points else None
        )
        self.presence = nn.Linear(fusion.hidden, 1) if config.grounding.presence > 0 else None

    def forward(
        self,
        vision: torch.Tensor,
        text: TextEmbedding,
        proprio: torch.Tensor,
        state: torch.Tensor | None = None,
        samples: int = 1,
    ) -> dict[str, torch.Tensor]:
        """vision: normalised pictures (CNN) or backbone tokens; state: (B * samples, hidden).

        Returns "action" (B * samples, K, A) in [-1, 1], "features" (B * samples, hidden) (what
        the action head saw), and where present "log_var" (same shape as "action"),
        "target_pixel" (B * samples, 2) where the named object is in the picture (and with the
        pointer fusion "target_logits" (B * samples, T_vision), which token holds it), "presence"
        (B * samples, 1) the logit that the command names one object here, "state"
        (B * samples, hidden) and "attention" (B * samples, T_vision); rows are grouped by input
        (input 0's samples first).
        """
        tokens = ModalityTokens(
            vision=self.vision(vision),
            language=self.language(text.tokens),
            language_mask=text.mask,
            language_pooled=self.language(text.pooled),
            proprio=self.proprio(proprio),
        )
        if samples > 1:  # the encoders ran once; only what follows is sampled
            tokens = ModalityTokens(
                *(t.repeat_interleave(samples, dim=0) for t in vars(tokens).values())
            )
        fused = self.fusion(tokens)
        features = fused.features
        out: dict[str, torch.Tensor] = {}
        if self.memory is not None:
            if state is None:
                state = torch.zeros_like(features)
            features = out["state"] = self.memory(features, state)
        hidden = out["features"] = self.head(features)
        shape = (hidden.shape[0], *self.chunk)
        out["action"] = torch.tanh(self.mean(hidden)).view(shape)
        if self.log_var is not None:
            out["log_var"] = self.log_var(hidden).clamp(*LOG_VAR_RANGE).view(shape)
        if fused.target_position is not None:
            out["target_pixel"] = fused.target_position
            out["target_logits"] = fused.target_logits
        elif self.grounding is not None:
            out["target_pixel"] = self.grounding(fused.features)
        if self.presence is not None:
            out["presence"] = self.presence(fused.features)
        if fused.vision_attention is not None:
            out["attention"] = fused.vision_attention
        return out


class Ensemble(nn.Module):
    """M members as one module: parameters stacked along dim 0, run in one vmapped pass.

    `self.stacked` is a `MemberNet` whose parameters carry the extra member dimension; it is only
    ever called through `functional_call` with one member's slice.
    """

    def __init__(self, members: list[MemberNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.size = len(members)
        params, buffers = stack_module_state(members)
        self.stacked = copy.deepcopy(members[0])  # the members themselves stay as they were
        for name, value in {**params, **buffers}.items():
            owner, _, leaf = name.rpartition(".")
            module = self.stacked.get_submodule(owner)
            if name in params:
                setattr(module, leaf, nn.Parameter(value.detach().clone()))
            else:
                module.register_buffer(leaf, value.detach().clone())

    def forward(
        self,
        vision: torch.Tensor,
        text: TextEmbedding,
        proprio: torch.Tensor,
        state: torch.Tensor | None = None,
        samples: int = 1,
    ) -> dict[str, torch.Tensor]:
        """Every output of `MemberNet.forward` with a leading member dimension; state is
        (M, B * samples, hidden)."""
        params = dict(self.stacked.named_parameters())
        buffers = dict(self.stacked.named_buffers())

        def member(p: dict, b: dict, member_state: torch.Tensor | None) -> dict[str, torch.Tensor]:
            return functional_call(
                self.stacked, (p, b), (vision, text, proprio, member_state, samples)
            )

        batched = vmap(member, in_dims=(0, 0, None if state is None else 0), randomness="different")
        return batched(params, buffers, state)


def error_features(draws: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """What the error model reads, (B, K + 2 K A + hidden): per chunk step the spread, the mean
    action and the per-channel standard deviation across draws, then the mean member features.

    draws: (B, D, K, A) every member's and MC sample's action for each input; features:
    (B, D, hidden) the matching `MemberNet` features.
    """
    batch = draws.shape[0]
    variance = draws.var(1, correction=0)
    return torch.cat(
        [
            variance.mean(-1).sqrt(),
            draws.mean(1).reshape(batch, -1),
            variance.sqrt().reshape(batch, -1),
            features.mean(1),
        ],
        dim=-1,
    ).float()


class ErrorModel(nn.Module):
    """`error_features` -> (B, K) the expected size of the largest per-channel action error.

    The features are standardised with statistics of the data it was fitted on (buffers, saved
    with the weights); it predicts the log of the error, so its output is always positive.
    """

    def __init__(self, features: int, steps: int, width: int = 64) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        self.net = nn.Sequential(nn.Linear(features, width), nn.GELU(), nn.Linear(width, steps))

    def log_error(self, features: torch.Tensor) -> torch.Tensor:
        scaled = (features - self.feature_mean) / self.feature_std
        return self.net(scaled).clamp(*LOG_ERROR_RANGE)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.log_error(features).exp()


def make_error_model(config: ModelConfig) -> ErrorModel | None:
    """An unfitted error model sized for `config`, or None where it asks for none."""
    if not config.uncertainty.error_model:
        return None
    steps, channels = config.chunk.size, len(config.action_names)
    return ErrorModel(steps + 2 * steps * channels + config.fusion.hidden, steps)


class VLAModel(nn.Module):
    """Shared backbone (optional) + ensemble + the training instructions' embeddings + the
    error model (optional)."""

    def __init__(
        self,
        config: ModelConfig,
        members: list[MemberNet],
        backbone: VisionBackbone | None,
        train_embeddings: torch.Tensor,
    ) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.ensemble = Ensemble(members)
        self.error_model = make_error_model(config)
        # what language novelty compares against; saved with the weights
        self.register_buffer("train_embeddings", train_embeddings.float())

    def forward(
        self,
        images: torch.Tensor,
        text: TextEmbedding,
        proprio: torch.Tensor,
        state: torch.Tensor | None = None,
        samples: int = 1,
    ) -> dict[str, torch.Tensor]:
        vision = images if self.backbone is None else self.backbone(images)
        return self.ensemble(vision, text, proprio, state, samples)


def vision_layout(
    config: ModelConfig, backbone: VisionBackbone | None
) -> tuple[int | None, int, tuple[int, int] | None]:
    """(backbone width or None, number of vision tokens, the (rows, cols) they tile the picture
    with or None) that the members are built for."""
    if backbone is None:
        step = config.vision.downsampling
        rows, cols = config.image_size[0] // step, config.image_size[1] // step
        return None, rows * cols, (rows, cols)
    return backbone.width, backbone.count, backbone.grid


def make_members(
    config: ModelConfig, text_width: int, backbone: VisionBackbone | None, seed: int
) -> list[MemberNet]:
    """`config.uncertainty.ensemble` members, member i initialised from seed + i."""
    width, tokens, grid = vision_layout(config, backbone)
    members = []
    for index in range(config.uncertainty.ensemble):
        torch.manual_seed(seed + index)
        members.append(MemberNet(config, text_width, width, tokens, grid))
    return members
