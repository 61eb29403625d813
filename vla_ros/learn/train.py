"""Behaviour cloning for the VLA model family, then conformal calibration, then a checkpoint.

1. Read the dataset (`vla_ros.learn.dataset`), split it by episode into training and held-out.
2. Statistics from the training episodes: the action range (the network's [-1, 1]), the
   proprioception mean and std; encode each distinct instruction once with the frozen text
   encoder.
3. Train every ensemble member from its own seed, on the same batches but with its own online
   bootstrap weights (Poisson(1) per sample), so members differ in data as well as in
   initialisation, and a shared backbone still runs once per batch. Loss: squared error on the
   normalised action chunk, plus the Gaussian NLL of the (detached) error for the variance head.
   Augmentation: small random shifts and brightness changes (colours are kept: they name the
   targets).
4. On the held-out episodes: fit the error model on half of them, then calibrate the uncertainty
   on the rest (split-conformal; `vla_ros.learn.calibration`).
5. Save config.json + model.safetensors to `out_dir`.

Progress (epoch, loss, held-out loss, time) goes to stderr.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from vla_ros.learn.calibration import calibrate_policy
from vla_ros.learn.dataset import Episode, iter_episodes, read_meta
from vla_ros.model.checkpoint import build_policy, load_policy, save_policy
from vla_ros.model.config import (
    GroundingConfig,
    MemoryKind,
    ModelConfig,
    TrainingInfo,
    config_for_robot,
)
from vla_ros.model.encoders import TextEmbedding, TextEncoder, VisionBackbone
from vla_ros.model.network import MemberNet, VLAModel, make_members
from vla_ros.model.processing import (
    ActionScaling,
    NormalizeImage,
    ProprioFeatures,
    ResizeImage,
    action_stats,
    proprio_stats,
)
from vla_ros.model.vla_policy import VLAPolicy


@dataclass(frozen=True)
class Frames:
    """Every frame of a set of episodes, concatenated, with the chunk targets precomputed."""

    images: np.ndarray  # (N, H, W, 3) uint8
    proprio: torch.Tensor  # (N, F) normalised
    targets: torch.Tensor  # (N, K, A) normalised actions j steps ahead (0 past the end)
    valid: torch.Tensor  # (N, K) bool
    instruction: torch.Tensor  # (N,) index into the distinct instructions
    starts: np.ndarray  # (W,) first frame of every training window
    target_pixels: torch.Tensor  # (N, 2) where the named object is in the picture; NaN: unknown
    named: torch.Tensor  # (N,) 1.0 where the instruction names one object here, else 0.0


def train(
    dataset_dir: str | Path,
    out_dir: str | Path,
    config_overrides: Mapping[str, Any] | None = None,
    epochs: int = 12,
    seed: int = 0,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    heldout_fraction: float = 0.15,
    augment: bool = True,
    log: TextIO = sys.stderr,
    start_from: str | Path | None = None,
    init_from: str | Path | None = None,
) -> Path:
    """Train on `dataset_dir`, calibrate on its held-out episodes, save to `out_dir`.

    config_overrides: dotted keys of `ModelConfig` ({"fusion.kind": "transformer",
    "uncertainty.ensemble": 3, ...}); action and joint names and the image size come from the
    dataset unless overridden. `start_from`: a checkpoint trained on the first episodes of this
    dataset (a DAgger round's previous one), whose weights and normalisation this training
    continues from; the episodes it held out stay held out, so calibration still sees only
    episodes no weight was trained on. `init_from`: a checkpoint of the same scene and model
    configuration trained on other data (the reaching policy, to learn picking up from), whose
    weights are the starting point; everything else (normalisation, held-out episodes) comes
    from this dataset. Member i starts from its member i modulo its ensemble size. Returns the
    checkpoint folder.
    """
    if start_from is not None and init_from is not None:
        raise ValueError("give start_from (same dataset) or init_from (other data), not both")
    started = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    meta = read_meta(dataset_dir)
    episodes = list(iter_episodes(dataset_dir))
    if len(episodes) < 2:
        raise ValueError(f"{dataset_dir} has {len(episodes)} episodes; training needs at least 2")
    dataset = str(Path(dataset_dir).resolve())
    previous = _previous_round(start_from, dataset, len(episodes))
    heldout_ids = _heldout_ids(
        len(episodes), heldout_fraction, rng, previous.config.training if previous else None
    )
    train_ids = sorted(set(range(len(episodes))) - set(heldout_ids))
    train_eps = [episodes[i] for i in train_ids]
    heldout_eps = [episodes[i] for i in heldout_ids]

    base = config_for_robot(meta.action_names, meta.joint_names, tuple(meta.image_size))
    config = base.with_overrides(dict(config_overrides or {}))
    if previous is not None:  # its weights read actions and joints on its scales
        action_scale, joint_scale = previous.config.action_stats, previous.config.proprio_stats
    else:
        features = ProprioFeatures(config.proprio, config.proprio_normalization)
        action_scale = action_stats(np.concatenate([e.actions for e in train_eps]))
        joint_scale = proprio_stats(
            np.concatenate([features.raw(e.joint_positions, e.joint_velocities) for e in train_eps])
        )
    config = dataclasses.replace(
        config,
        action_stats=action_scale,
        proprio_stats=joint_scale,
        training_instructions=tuple(sorted({e.instruction for e in train_eps})),
        training=TrainingInfo(dataset, tuple(heldout_ids), (), epochs, seed, len(episodes)),
    )
    text = TextEncoder(config.text)
    policy = build_policy(config, seed=seed, text=text)  # resolves the backbone and its stats
    config, model = policy.config, policy.model
    members = make_members(config, text.width, model.backbone, seed)
    if previous is not None:
        _continue_from(previous, members, model.backbone, start_from)
    elif init_from is not None:
        _continue_from(load_policy(str(init_from)), members, model.backbone, init_from, True)
    every_instruction = sorted({e.instruction for e in episodes})
    embeddings = text.encode(every_instruction)
    index = {instruction: i for i, instruction in enumerate(every_instruction)}
    train_frames = _frames(config, train_eps, index)
    heldout_frames = _frames(config, heldout_eps, index)
    log.write(
        f"training {len(members)} member(s) on {len(train_frames.images)} frames "
        f"({len(train_eps)} episodes), {len(heldout_frames.images)} held out; "
        f"{policy.describe()}\n"
    )
    trainable = [p for m in members for p in m.parameters()]
    if model.backbone is not None and config.vision.finetune:
        trainable += list(model.backbone.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=1e-4)
    batches = math.ceil(len(train_frames.starts) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, learning_rate, total_steps=max(1, epochs * batches), pct_start=0.1
    )
    batcher = _Batcher(config, model.backbone, embeddings)
    # The yardstick every epoch's held-out loss is read against: the untrained members'.
    log.write(f"before training  held-out {_heldout_loss(members, batcher, heldout_frames):.4f}\n")
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        for m in members:
            m.train()
        if model.backbone is not None:
            model.backbone.train(config.vision.finetune)
        total = 0.0
        for starts in np.array_split(rng.permutation(train_frames.starts), batches):
            batch = batcher(train_frames, starts, rng if augment else None)
            bootstrap = rng if len(members) > 1 else None
            loss = sum(_member_loss(m, batch, bootstrap, config.grounding) for m in members)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) / len(members)
        heldout = _heldout_loss(members, batcher, heldout_frames)
        log.write(
            f"epoch {epoch:3d}/{epochs}  loss {total / batches:.4f}  held-out {heldout:.4f}  "
            f"{time.perf_counter() - epoch_start:.1f} s\n"
        )
        log.flush()

    trained = VLAModel(config, members, model.backbone, model.train_embeddings)
    policy = type(policy)(config, trained, text)
    calibrate_policy(policy, heldout_eps, heldout_ids, seed, log)
    out = save_policy(policy, out_dir)
    log.write(f"saved {out} ({time.perf_counter() - started:.0f} s in all)\n")
    return out


def _previous_round(start_from: str | Path | None, dataset: str, count: int) -> VLAPolicy | None:
    if start_from is None:
        return None
    previous = load_policy(str(start_from))
    training = previous.config.training
    if training.dataset != dataset or not 0 < training.episodes <= count:
        raise ValueError(
            f"{start_from} was trained on {training.dataset or 'an unknown dataset'} "
            f"({training.episodes} episodes), not on the first episodes of {dataset} ({count}): "
            "continue only from a checkpoint of this dataset, or train from scratch"
        )
    return previous


def _heldout_ids(
    count: int, fraction: float, rng: np.random.Generator, previous: TrainingInfo | None
) -> list[int]:
    """Episodes to hold out: `fraction` of them, drawn at random; with `previous`, the ones it
    held out and `fraction` of the episodes added since."""
    if previous is None:
        return sorted(rng.permutation(count)[: max(1, round(fraction * count))].tolist())
    added = previous.episodes + rng.permutation(count - previous.episodes)
    held = added[: round(fraction * len(added))].tolist()
    return sorted([*previous.heldout_episodes, *held])


def _continue_from(
    previous: VLAPolicy,
    members: list[MemberNet],
    backbone: VisionBackbone | None,
    start_from: str | Path | None,
    cycle: bool = False,
) -> None:
    """Load `previous`'s ensemble, member by member, into `members` (and its backbone); with
    `cycle`, an ensemble of another size too (member i from its member i modulo its size)."""
    stacked = previous.model.ensemble.stacked.state_dict()
    size = previous.model.ensemble.size
    if size != len(members) and not cycle:
        raise ValueError(
            f"{start_from} has {previous.model.ensemble.size} ensemble member(s), this "
            f"configuration {len(members)}: continue with the same model configuration"
        )
    try:
        for index, member in enumerate(members):
            member.load_state_dict({name: value[index % size] for name, value in stacked.items()})
        if backbone is not None and previous.model.backbone is not None:
            backbone.load_state_dict(previous.model.backbone.state_dict())
    except RuntimeError as error:
        raise ValueError(
            f"{start_from} is another model than this configuration makes ({error}): continue "
            "with the overrides it was trained with"
        ) from None


def _window(config: ModelConfig) -> tuple[int, int]:
    """(frames per training sequence, frames between them): a memory model trains on sequences
    of inference steps, `replan_every` frames apart, as it will run."""
    if config.memory.kind is MemoryKind.NONE:
        return 1, 1
    return config.memory.window, config.chunk.replan_every


def _frames(config: ModelConfig, episodes: list[Episode], index: dict[str, int]) -> Frames:
    scaling = ActionScaling(config.actions)
    features = ProprioFeatures(config.proprio, config.proprio_normalization)
    steps_ahead, actions = config.chunk.size, len(config.action_names)
    length, stride = _window(config)
    targets, valid, starts, offset = [], [], [], 0
    for episode in episodes:
        count = len(episode)
        ahead = np.zeros((count, steps_ahead, actions), np.float32)
        present = np.zeros((count, steps_ahead), bool)
        normalized = scaling.normalize(episode.actions)
        for j in range(steps_ahead):
            ahead[: count - j, j] = normalized[j:]
            present[: count - j, j] = True
        targets.append(ahead)
        valid.append(present)
        starts.append(offset + np.arange(max(0, count - (length - 1) * stride)))
        offset += count
    starts_array = np.concatenate(starts)
    if len(starts_array) == 0:
        raise ValueError(
            f"no episode is long enough for memory.window {length} x replan_every {stride}"
        )
    return Frames(
        images=np.concatenate([e.images for e in episodes]),
        proprio=torch.cat([features(e.joint_positions, e.joint_velocities) for e in episodes]),
        targets=torch.from_numpy(np.concatenate(targets)),
        valid=torch.from_numpy(np.concatenate(valid)),
        instruction=torch.tensor(
            [index[e.instruction] for e in episodes for _ in range(len(e))], dtype=torch.long
        ),
        starts=starts_array,
        target_pixels=torch.from_numpy(
            np.concatenate([_target_pixels(e) for e in episodes]).astype(np.float32)
        ),
        named=torch.tensor(
            [float(e.names_target) for e in episodes for _ in range(len(e))], dtype=torch.float32
        ),
    )


def _target_pixels(episode: Episode) -> np.ndarray:
    if episode.target_pixels is None:
        return np.full((len(episode), 2), np.nan, np.float32)
    return episode.target_pixels


@dataclass(frozen=True)
class Batch:
    """B training sequences of L inference steps."""

    vision: torch.Tensor  # (B, L, ...) normalised pictures, or backbone tokens
    text: TextEmbedding  # (B, ...): one instruction per sequence
    proprio: torch.Tensor  # (B, L, F)
    targets: torch.Tensor  # (B, L, K, A)
    valid: torch.Tensor  # (B, L, K)
    target_pixels: torch.Tensor  # (B, L, 2), NaN where unknown
    named: torch.Tensor  # (B,) 1.0 where the instruction names one object here


class _Batcher:
    """Frames -> network inputs, with the same pre-processing steps as the policy."""

    def __init__(
        self, config: ModelConfig, backbone: VisionBackbone | None, embeddings: TextEmbedding
    ) -> None:
        self.config = config
        self.backbone = backbone
        self.embeddings = embeddings
        self.resize = ResizeImage(config.image_size)
        self.normalize = NormalizeImage(config.vision.mean, config.vision.std)
        self.length, self.stride = _window(config)

    def __call__(
        self, frames: Frames, starts: np.ndarray, rng: np.random.Generator | None
    ) -> Batch:
        rows = starts[:, None] + np.arange(self.length) * self.stride  # (B, L)
        flat = rows.ravel()
        pictures = frames.images[flat]
        if pictures.shape[1:3] != tuple(self.config.image_size):
            pictures = np.stack([self.resize(p) for p in pictures])
        images = self.normalize(pictures)
        target_pixels = frames.target_pixels[flat]
        if rng is not None:
            images, moved = self._augment(images, rng)
            target_pixels = target_pixels + moved
        if self.backbone is not None:
            with torch.set_grad_enabled(self.config.vision.finetune and torch.is_grad_enabled()):
                images = self.backbone(images)
        batch = len(starts)
        return Batch(
            vision=images.view(batch, self.length, *images.shape[1:]),
            text=self.embeddings.index(frames.instruction[rows[:, 0]]),
            proprio=frames.proprio[flat].view(batch, self.length, -1),
            targets=frames.targets[flat].view(batch, self.length, *frames.targets.shape[1:]),
            valid=frames.valid[flat].view(batch, self.length, -1),
            target_pixels=target_pixels.view(batch, self.length, 2),
            named=frames.named[rows[:, 0]],
        )

    def _augment(
        self, images: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shift by up to 2 pixels (edges repeated) and scale brightness by 0.8-1.2.

        Returns the pictures and how far each one's content moved, (N, 2) as (x, y) in the
        [-1, 1] picture coordinates of `Episode.target_pixels`.
        """
        count, _, height, width = images.shape
        pad = 2
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad), mode="replicate")
        dy = torch.from_numpy(rng.integers(0, 2 * pad + 1, count))
        dx = torch.from_numpy(rng.integers(0, 2 * pad + 1, count))
        rows = (dy[:, None] + torch.arange(height))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(width))[:, None, None, :]
        shifted = padded[
            torch.arange(count)[:, None, None, None], torch.arange(3)[:, None, None], rows, cols
        ]
        # brightness s on [0, 1] pixels is s * x + (s - 1) * mean / std on normalised ones
        scale = torch.from_numpy(rng.uniform(0.8, 1.2, (count, 1, 1, 1))).float()
        offset = torch.tensor(self.normalize.mean).view(1, 3, 1, 1) / torch.tensor(
            self.normalize.std
        ).view(1, 3, 1, 1)
        moved = torch.stack([2.0 * (pad - dx) / width, 2.0 * (pad - dy) / height], dim=-1)
        return scale * shifted + (scale - 1.0) * offset, moved.float()


def _member_loss(
    member: MemberNet,
    batch: Batch,
    rng: np.random.Generator | None,
    grounding: GroundingConfig | None = None,
) -> torch.Tensor:
    """Mean loss over the sequence; with `rng`, each sample weighted by a Poisson(1) draw (the
    member's own bootstrap of the batch). With `grounding`, plus its `weight` of the grounding
    head's squared error where the named object is in view and its `presence` of the presence
    head's cross-entropy."""
    grounding = grounding if grounding is not None else GroundingConfig()
    count, length = batch.proprio.shape[:2]
    weights = (
        torch.from_numpy(rng.poisson(1.0, count)).float() if rng is not None else torch.ones(count)
    )
    state = None
    total = torch.zeros(())
    for step in range(length):
        out = member(batch.vision[:, step], batch.text, batch.proprio[:, step], state)
        state = out.get("state")
        error = (out["action"] - batch.targets[:, step]) ** 2
        if "log_var" in out:
            # the variance head learns the size of the mean's errors without pulling on the
            # mean, which keeps learning exactly as without it (and keeps the ensemble's spread)
            log_var = out["log_var"]
            error = error + 0.5 * (log_var + error.detach() / log_var.exp())
        valid = batch.valid[:, step]
        per_sample = (error * valid[..., None]).sum((1, 2)) / (
            valid.sum(1) * error.shape[-1]
        ).clamp(min=1)
        if grounding.weight > 0:
            per_sample = per_sample + grounding.weight * _grounding_error(
                out["target_pixel"], batch.target_pixels[:, step]
            )
            if "target_logits" in out:
                per_sample = per_sample + grounding.weight * _pointing_error(
                    out["target_logits"], member.fusion.centres, batch.target_pixels[:, step]
                )
        if grounding.presence > 0:
            per_sample = per_sample + grounding.presence * (
                torch.nn.functional.binary_cross_entropy_with_logits(
                    out["presence"][:, 0], batch.named, reduction="none"
                )
            )
        total = total + (per_sample * weights).sum() / weights.sum().clamp(min=1.0)
    return total / length


def _grounding_error(predicted: torch.Tensor, actual: torch.Tensor) -> torch.Tensor:
    """Per sample squared error of the predicted picture position; 0 where it is unknown."""
    known = actual.isfinite().all(-1)
    error = ((predicted - actual.nan_to_num()) ** 2).sum(-1)
    return torch.where(known, error, torch.zeros_like(error))


def _pointing_error(
    logits: torch.Tensor, centres: torch.Tensor, actual: torch.Tensor
) -> torch.Tensor:
    """Per sample cross-entropy of the pointer's token scores against the token nearest the
    named object; 0 where it is unknown. The squared error of the expected position alone pulls
    a spread-out map only towards its mean, this picks the token."""
    known = actual.isfinite().all(-1)
    nearest = torch.cdist(actual.nan_to_num(), centres).argmin(-1)
    error = torch.nn.functional.cross_entropy(logits, nearest, reduction="none")
    return torch.where(known, error, torch.zeros_like(error))


@torch.no_grad()
def _heldout_loss(members: list[MemberNet], batcher: _Batcher, frames: Frames) -> float:
    for member in members:
        member.eval()
    if batcher.backbone is not None:
        batcher.backbone.eval()
    losses = [
        float(_member_loss(member, batcher(frames, starts, None), None))
        for starts in np.array_split(frames.starts, max(1, len(frames.starts) // 512))
        for member in members
    ]
    return float(np.mean(losses))
