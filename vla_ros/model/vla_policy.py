"""`VLAPolicy`: the model family behind the policy contract.

One inference = pre-processing (resize, normalise pixels, joint features, cached instruction
embedding) -> one batched pass of every ensemble member and MC sample -> mean action, spread,
calibrated bound -> post-processing (physical units, clip). With action chunking the K predicted
actions are queued and served `replan_every` at a time; memory carries the recurrent state from one
inference to the next. Both are forgotten on `reset()` and when the instruction changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vla_ros.model.config import ModelConfig
from vla_ros.model.encoders import TextEmbedding, TextEncoder
from vla_ros.model.network import VLAModel, error_features, vision_layout
from vla_ros.model.policy import ActionProposal, Observation, Policy
from vla_ros.model.processing import ActionScaling, NormalizeImage, ProprioFeatures, ResizeImage
from vla_ros.model.uncertainty import action_bound, language_novelty, language_penalty


@dataclass(frozen=True)
class Prediction:
    """One batched inference; normalised units unless said otherwise. B inputs, K chunk steps."""

    action: np.ndarray  # (B, K, A) ensemble/sample mean, physical units, clipped
    normalized: np.ndarray  # (B, K, A) the same in [-1, 1], before clipping
    spread: np.ndarray  # (B, K) sigma across ensemble members and MC samples
    learned: np.ndarray | None  # (B, K) the variance head's sigma, if there is one
    predicted: np.ndarray | None  # (B, K) the error model's estimate, if there is one
    error_features: np.ndarray | None  # (B, F) what the error model read, if there is one
    bound: np.ndarray  # (B, K) the conformal action-error bound
    novelty: np.ndarray  # (B,) language novelty
    penalty: np.ndarray  # (B,) its contribution to the uncertainty
    uncertainty: np.ndarray  # (B, K) what is published: bound + penalty + absent_penalty
    attention: np.ndarray | None  # (B, T_vision), or None when the fusion has none
    # (B, 2) where the grounding head puts the named object in the picture ((x, y) in [-1, 1]
    # from the top-left corner), or None without one
    target_pixel: np.ndarray | None = None
    # (B,) the presence head's probability that the command names one object here (None without
    # one), and what its doubt adds to the uncertainty: grounding.absent_uncertainty x (1 - it)
    named: np.ndarray | None = None
    absent_penalty: np.ndarray | None = None


class VLAPolicy(Policy):
    def __init__(
        self,
        config: ModelConfig,
        model: VLAModel,
        text: TextEncoder,
        device: str = "cpu",
        mc_samples: int | None = None,
        source: Path | None = None,
    ) -> None:
        self.config = config
        self.action_names = config.action_names
        self.joint_names = config.joint_names
        self.input_size = tuple(config.image_size)
        self.model = model.to(device).eval()
        self.text = text
        self.device = torch.device(device)
        self.source = source  # the checkpoint folder, if loaded from one
        self.mc_samples = config.uncertainty.mc_samples
        if mc_samples is not None and self.mc_samples:  # only where the method samples
            if mc_samples < 2:
                raise ValueError(f"mc_samples must be >= 2, got {mc_samples}")
            self.mc_samples = mc_samples
        self.resize = ResizeImage(config.image_size)
        self.normalize_image = NormalizeImage(config.vision.mean, config.vision.std)
        self.proprio = ProprioFeatures(config.proprio, config.proprio_normalization)
        self.scaling = ActionScaling(config.actions)
        _, _, self.grid = vision_layout(config, model.backbone)
        self._queue: deque[ActionProposal] = deque()
        # With temporal ensembling: the last K chunks' proposals, newest first.
        self._chunks: deque[list[ActionProposal]] = deque(maxlen=config.chunk.size)
        self._state: torch.Tensor | None = None
        self._instruction: str | None = None
        self.last_attention: np.ndarray | None = None  # (rows, cols) over the picture

    # -- the contract -----------------------------------------------------------------------------
    @torch.inference_mode()
    def select_action(self, observation: Observation) -> ActionProposal:
        if observation.instruction != self._instruction:
            self.reset()
            self._instruction = observation.instruction
        if not self._queue:
            velocities = observation.joint_velocities
            prediction, self._state = self.predict(
                observation.image[None],
                [observation.instruction],
                np.asarray(observation.joint_positions)[None],
                None if velocities is None else np.asarray(velocities)[None],
                self._state,
            )
            self._enqueue(prediction)
        if not self.config.chunk.temporal_ensembling:
            return self._queue.popleft()
        self._chunks.appendleft(list(self._queue))
        self._queue.clear()
        return self._temporal_ensemble()

    def reset(self) -> None:
        self._queue.clear()
        self._chunks.clear()
        self._state = None
        self._instruction = None
        self.last_attention = None

    def describe(self) -> str:
        """One line for logs: what runs and what the uncertainty means."""
        c = self.config
        methods = [f"ensemble of {c.uncertainty.ensemble}"] if c.uncertainty.ensemble > 1 else []
        if self.mc_samples:
            methods.append(f"MC dropout x{self.mc_samples}")
        if c.uncertainty.variance_head:
            methods.append("learned variance")
        if c.uncertainty.novelty:
            methods.append("language novelty")
        if c.grounding.presence > 0:
            methods.append("does the command name one object here")
        cal = c.conformal
        meaning = (
            f"action-error bound at {cal.coverage:.0%} coverage (calibrated on {cal.samples} steps)"
            if cal.calibrated
            else "uncalibrated spread"
        )
        return (
            f"{c.vision.kind.value} vision, {c.fusion.kind.value} fusion, memory "
            f"{c.memory.kind.value}, chunk {c.chunk.size}/{c.chunk.replan_every}; uncertainty: "
            f"{', '.join(methods) or 'constant'}; {meaning}, normalised action units"
        )

    # -- batched inference ----------------------------------------------------------------------
    @torch.inference_mode()
    def predict(
        self,
        images: np.ndarray,
        instructions: list[str],
        positions: np.ndarray,
        velocities: np.ndarray | None,
        state: torch.Tensor | None = None,
        samples: int | None = None,
    ) -> tuple[Prediction, torch.Tensor | None]:
        """B observations at once -> (prediction, the next recurrent state).

        images: (B, H, W, 3) uint8 at any size. `samples` overrides the MC sample count (0 = no
        sampling; 1 = one stochastic pass, as the textbook loop in the benchmark uses).
        """
        samples = self.mc_samples if samples is None else samples
        pixels = np.stack([self.resize(image) for image in images])
        inputs = self.normalize_image(pixels).to(self.device)
        text = TextEmbedding.cat([self.text.embed(i) for i in instructions]).to(self.device)
        proprio = self.proprio(positions, velocities).to(self.device)
        with mc_dropout(self.model.ensemble, samples > 0):  # never inside a backbone
            out = self.model(inputs, text, proprio, state, max(samples, 1))
        return self._summarise(out, text, len(instructions)), out.get("state")

    def _summarise(
        self, out: dict[str, torch.Tensor], text: TextEmbedding, batch: int
    ) -> Prediction:
        u = self.config.uncertainty
        members, rows, steps, channels = out["action"].shape
        # (members, B, samples, K, A) -> every member and sample of input b along one axis
        draws = out["action"].view(members, batch, rows // batch, steps, channels)
        draws = draws.transpose(0, 1).reshape(batch, -1, steps, channels).double()
        mean = draws.mean(1)
        spread = draws.var(1, correction=0).mean(-1).sqrt().cpu().numpy()
        learned = None
        if "log_var" in out:
            variance = out["log_var"].view(members, batch, -1, steps, channels).exp()
            learned = variance.transpose(0, 1).reshape(batch, -1, steps, channels).mean(1)
            learned = learned.double().mean(-1).sqrt().cpu().numpy()
        predicted = features = None
        if self.model.error_model is not None:
            hidden = out["features"].view(members, batch, -1, out["features"].shape[-1])
            features = error_features(
                draws, hidden.transpose(0, 1).reshape(batch, -1, hidden.shape[-1])
            )
            predicted = self.model.error_model(features).double().cpu().numpy()
            features = features.cpu().numpy()
        bound = action_bound(self.config.conformal, spread, learned, predicted, u.sigma_floor)
        if u.novelty:
            reference = self.model.train_embeddings.cpu().numpy()  # as stored in the checkpoint
            novelty = language_novelty(text.pooled.cpu().numpy(), reference)
            penalty = language_penalty(novelty, u.novelty_ok, u.novelty_bad)
        else:
            novelty = penalty = np.zeros(batch)
        normalized = mean.cpu().numpy()
        attention = out.get("attention")
        if attention is not None:
            attention = attention.view(members, batch, -1, attention.shape[-1]).mean((0, 2))
            attention = attention.cpu().numpy()
        target_pixel = out.get("target_pixel")
        if target_pixel is not None:
            target_pixel = target_pixel.view(members, batch, -1, 2).mean((0, 2)).cpu().numpy()
        named = absent = None
        published = bound + penalty[:, None]
        if "presence" in out:
            probability = torch.sigmoid(out["presence"].double()).view(members, batch, -1)
            named = probability.mean((0, 2)).cpu().numpy()
            absent = self.config.grounding.absent_uncertainty * (1.0 - named)
            published = published + absent[:, None]
        return Prediction(
            action=self.scaling.clip(self.scaling.unnormalize(normalized)),
            normalized=normalized.astype(np.float32),
            spread=spread,
            learned=learned,
            predicted=predicted,
            error_features=features,
            bound=bound,
            novelty=novelty,
            penalty=penalty,
            uncertainty=published,
            attention=attention,
            target_pixel=target_pixel,
            named=named,
            absent_penalty=absent,
        )

    def _temporal_ensemble(self) -> ActionProposal:
        """This step's action from every chunk that predicted it: the chunk made i steps ago
        holds it at position i. The weighted mean of the actions and of their uncertainties;
        the other parts of the uncertainty are the newest prediction's."""
        proposals = [chunk[age] for age, chunk in enumerate(self._chunks)]
        rank_from_oldest = np.arange(len(proposals))[::-1]
        weights = np.exp(-self.config.chunk.ensemble_decay * rank_from_oldest)
        weights /= weights.sum()
        action = np.einsum("i,ia->a", weights, np.stack([p.action for p in proposals]))
        uncertainty = float(weights @ np.array([p.uncertainty for p in proposals]))
        components = {**proposals[0].components, "ensembled_chunks": float(len(proposals))}
        return ActionProposal(action=action, uncertainty=uncertainty, components=components)

    def _enqueue(self, prediction: Prediction) -> None:
        if prediction.attention is not None and self.grid is not None:
            self.last_attention = prediction.attention[0].reshape(self.grid)
        # Temporal ensembling keeps the whole chunk, to serve each action at its own step.
        chunk = self.config.chunk
        for j in range(chunk.size if chunk.temporal_ensembling else chunk.replan_every):
            self._queue.append(
                ActionProposal(
                    action=prediction.action[0, j],
                    uncertainty=float(prediction.uncertainty[0, j]),
                    components={
                        "action_bound": float(prediction.bound[0, j]),
                        "spread": float(prediction.spread[0, j]),
                        "learned_sigma": (
                            0.0 if prediction.learned is None else float(prediction.learned[0, j])
                        ),
                        "predicted_error": (
                            0.0
                            if prediction.predicted is None
                            else float(prediction.predicted[0, j])
                        ),
                        "language_novelty": float(prediction.novelty[0]),
                        "language_penalty": float(prediction.penalty[0]),
                        **(
                            {}
                            if prediction.named is None
                            else {
                                "named_probability": float(prediction.named[0]),
                                "absent_penalty": float(prediction.absent_penalty[0]),
                            }
                        ),
                        "chunk_step": float(j),
                    },
                )
            )


@contextmanager
def mc_dropout(model: torch.nn.Module, enabled: bool) -> Iterator[None]:
    """Dropout layers sample while inside (the rest of the model stays in eval mode)."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)] if enabled else []
    for layer in layers:
        layer.train()
    try:
        yield
    finally:
        for layer in layers:
            layer.eval()
