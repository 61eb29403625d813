"""Replay recorded episodes through a policy, as it would run: the prediction, its uncertainty and
its actual error at every inference step.

Episodes run side by side, one batched inference per time step; a model with memory sees every
`replan_every`-th frame with its state carried along, exactly as `select_action` would feed it.
Errors are in normalised action units: the largest per-channel difference between the predicted
action j steps ahead and the demonstrated one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vla_ros.learn.dataset import Episode
from vla_ros.model.config import MemoryKind
from vla_ros.model.vla_policy import VLAPolicy


@dataclass(frozen=True)
class ReplayResult:
    """One row per inference step (N rows); K chunk steps ahead."""

    errors: np.ndarray  # (N, K) largest per-channel error, normalised units
    valid: np.ndarray  # (N, K) whether the episode had a demonstrated action j steps ahead
    spread: np.ndarray  # (N, K) sigma across members and MC samples
    learned: np.ndarray | None  # (N, K) the variance head's sigma, if there is one
    predicted: np.ndarray | None  # (N, K) the error model's estimate, if there is one
    error_features: np.ndarray | None  # (N, F) what the error model read, if there is one
    bound: np.ndarray  # (N, K) the conformal action-error bound
    uncertainty: np.ndarray  # (N, K) what the policy publishes
    novelty: np.ndarray  # (N,)
    episode: np.ndarray  # (N,) index into the replayed episodes
    step: np.ndarray  # (N,) frame index within the episode

    @property
    def first(self) -> tuple[np.ndarray, np.ndarray]:
        """(uncertainty, error) of the action served right after each inference."""
        return self.uncertainty[:, 0], self.errors[:, 0]


ImageTransform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def replay(
    policy: VLAPolicy,
    episodes: Sequence[Episode],
    image_transform: ImageTransform | None = None,
    instruction: str | None = None,
    seed: int = 0,
) -> ReplayResult:
    """Run every episode through `policy.predict`; optionally corrupt the pictures
    (`image_transform(images, rng)`) or replace the instruction, to measure what uncertainty does
    when the inputs go wrong."""
    config = policy.config
    steps_ahead = config.chunk.size
    recurrent = config.memory.kind is not MemoryKind.NONE
    stride = config.chunk.replan_every if recurrent else 1
    scaling = policy.scaling
    rng = np.random.default_rng(seed)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ReplayResult.__dataclass_fields__}
    states: dict[int, torch.Tensor] = {}  # episode -> its (members, samples, hidden) state
    longest = max(len(e) for e in episodes)
    targets = [scaling.normalize(e.actions) for e in episodes]
    for t in range(0, longest, stride):
        active = [i for i, e in enumerate(episodes) if len(e) > t]
        images = np.stack([episodes[i].images[t] for i in active])
        if image_transform is not None:
            images = image_transform(images, rng)
        state = None
        if recurrent and t > 0:
            state = torch.cat([states[i] for i in active], dim=1).flatten(1, 2)
        prediction, new_state = policy.predict(
            images,
            [instruction or episodes[i].instruction for i in active],
            np.stack([episodes[i].joint_positions[t] for i in active]),
            np.stack([episodes[i].joint_velocities[t] for i in active]),
            state,
        )
        if new_state is not None:
            per_episode = new_state.view(new_state.shape[0], len(active), -1, new_state.shape[-1])
            states.update({i: per_episode[:, [k]] for k, i in enumerate(active)})
        errors = np.zeros((len(active), steps_ahead))
        valid = np.zeros((len(active), steps_ahead), bool)
        for k, i in enumerate(active):
            ahead = targets[i][t : t + steps_ahead]
            valid[k, : len(ahead)] = True
            errors[k, : len(ahead)] = np.abs(prediction.normalized[k, : len(ahead)] - ahead).max(-1)
        for name, value in (
            ("errors", errors),
            ("valid", valid),
            ("spread", prediction.spread),
            ("learned", prediction.learned),
            ("predicted", prediction.predicted),
            ("error_features", prediction.error_features),
            ("bound", prediction.bound),
            ("uncertainty", prediction.uncertainty),
            ("novelty", prediction.novelty),
            ("episode", np.asarray(active)),
            ("step", np.full(len(active), t)),
        ):
            rows[name].append(value)
    return ReplayResult(
        **{
            name: None if parts[0] is None else np.concatenate(parts)
            for name, parts in rows.items()
        }
    )
