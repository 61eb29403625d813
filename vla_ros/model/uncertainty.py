"""Uncertainty: from the network's spread to a number with a stated meaning.

The published number (the fusion node's `/vla/uncertainty`, compared with the safety node's
`uncertainty_slowdown` / `uncertainty_stop`) is

    U = min(2, max(q_j (spread + sigma_floor + predicted), v_j (learned + sigma_floor)))
        + language_penalty(novelty)

in **normalised action units** (each action channel mapped to [-1, 1] over its trained range
widened by a 5 % margin, so 1.0 is about half a channel's range):

- `spread` is the disagreement about the served action: the square root of the channel mean of
  the variance across ensemble members and MC-dropout samples. It rises on inputs unlike the
  training data (a broken picture).
- `predicted` is the error model's estimate of the error (where there is one): fitted on held-out
  episodes, it learns where this policy's ordinary errors are large, which the spread alone ranks
  poorly (for the shipped mobile checkpoint, Spearman 0.33 against 0.66 with it: docs/models.md).
  Adding it to the spread rather than replacing it keeps the bound growing with the spread
  whatever the error model makes of an input it never saw.
- `learned` is the variance head's sigma (where there is one): how noisy the demonstrations were
  in situations like this one. It knows nothing of unfamiliar inputs, so it is kept apart rather
  than summed, where it would drown the spread.
- `q_j` and `v_j` come from split-conformal calibration on held-out episodes (`calibrate`): with
  probability `coverage` (95 % by default) the largest per-channel error of the action served j
  steps after an inference is at most `q_j (spread + floor + predicted)`, and likewise for `v_j`.
  Each is an action-error bound on data like the held-out episodes (and unlike those the error
  model was fitted on); their maximum holds at least as often, and so does its cap at 2.0 (the
  largest error two actions in [-1, 1] can have).
- `language_penalty` covers what that guarantee cannot: a command unlike any training instruction.
  Novelty is `1 - max cosine` between the instruction's embedding and the training instructions'
  (stored in the checkpoint); the penalty is 0 up to `novelty_ok` and rises linearly to 2.0 (the
  error of an arbitrary action in [-1, 1]) at `novelty_bad`. U is monotone in both terms, so a
  nonsense or unseen-object command raises it whatever the picture.

The metrics here (`spearman`, `auroc`) say whether U tracks real error; see
`vla_ros.learn.uncertainty_report` for the report over held-out and corrupted inputs.
"""

from __future__ import annotations

import math

import numpy as np

from vla_ros.model.config import WORST_CASE_ERROR, Calibration


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The split-conformal quantile: the ceil((n + 1) coverage)-th smallest score.

    For exchangeable data, a new score is at most this value with probability >= coverage.
    With too few scores for that coverage the answer is inf (no finite bound is justified).
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    n = len(scores)
    rank = math.ceil((n + 1) * coverage)
    return float("inf") if rank > n else float(scores[rank - 1])


def calibrate(
    errors: np.ndarray,
    spread: np.ndarray,
    learned: np.ndarray | None,
    predicted: np.ndarray | None,
    valid: np.ndarray,
    coverage: float,
    sigma_floor: float,
    mc_samples: int = 0,
) -> Calibration:
    """Quantiles of error / (spread + floor + predicted) and (with a variance head) of
    error / (learned + floor) over the valid held-out steps, per chunk position j.

    errors, spread, learned, predicted, valid: (N, K): the largest per-channel error of the
    predicted action j steps ahead (normalised units), the two sigmas, the error model's estimate,
    and whether the episode still had that step.
    """
    scale = spread if predicted is None else spread + predicted
    return Calibration(
        _quantiles(errors, scale, valid, coverage, sigma_floor),
        () if learned is None else _quantiles(errors, learned, valid, coverage, sigma_floor),
        coverage,
        int(valid[:, 0].sum()),
        mc_samples,
    )


def _quantiles(
    errors: np.ndarray, sigmas: np.ndarray, valid: np.ndarray, coverage: float, floor: float
) -> tuple[float, ...]:
    ratios = np.asarray(errors, np.float64) / (np.asarray(sigmas, np.float64) + floor)
    quantiles = []
    for j in range(ratios.shape[1]):
        scores = ratios[valid[:, j], j]
        if len(scores) == 0:
            raise ValueError(f"no held-out step has an action {j} steps ahead to calibrate on")
        quantiles.append(conformal_quantile(scores, coverage))
    if not all(math.isfinite(q) for q in quantiles):
        raise ValueError(
            f"{int(valid[:, -1].sum())} held-out steps are too few for {coverage:.0%} coverage: "
            "record more episodes or hold out a larger fraction"
        )
    return tuple(quantiles)


def action_bound(
    calibration: Calibration,
    spread: np.ndarray,
    learned: np.ndarray | None,
    predicted: np.ndarray | None,
    sigma_floor: float,
) -> np.ndarray:
    """(B, K) the published action-error bound: the larger of the calibrated bounds, at most
    WORST_CASE_ERROR (no two actions in [-1, 1] differ by more, so a larger bound says no more)."""
    scale = spread if predicted is None else spread + predicted
    bound = np.asarray(calibration.quantiles) * (scale + sigma_floor)
    if learned is not None and calibration.variance_quantiles:
        bound = np.maximum(
            bound, np.asarray(calibration.variance_quantiles) * (learned + sigma_floor)
        )
    return np.minimum(bound, WORST_CASE_ERROR)


def language_novelty(pooled: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """1 - max cosine similarity of each (B, D) embedding to the (R, D) training instructions.

    0 for a training instruction, about 0.15 for a paraphrase and 0.8 for nonsense with the
    packaged MiniLM. With no reference instructions nothing is novel (0).
    """
    pooled = np.asarray(pooled, np.float64)
    if len(reference) == 0:
        return np.zeros(len(pooled))
    unit = pooled / np.linalg.norm(pooled, axis=-1, keepdims=True).clip(min=1e-12)
    ref = np.asarray(reference, np.float64)
    ref = ref / np.linalg.norm(ref, axis=-1, keepdims=True).clip(min=1e-12)
    return np.clip(1.0 - (unit @ ref.T).max(axis=-1), 0.0, 2.0)


def language_penalty(novelty: np.ndarray, ok: float, bad: float) -> np.ndarray:
    """0 up to `ok`, then linear to the worst-case action error 2.0 at `bad` and beyond."""
    return WORST_CASE_ERROR * np.clip((np.asarray(novelty) - ok) / (bad - ok), 0.0, 1.0)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (ties get their mean rank)."""
    rx, ry = _ranks(np.asarray(x)), _ranks(np.asarray(y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for flagging `labels` (the Mann-Whitney statistic)."""
    labels = np.asarray(labels, bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _ranks(np.asarray(scores))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties averaged."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), np.float64)
    start = 0
    while start < len(values):
        stop = start
        while stop + 1 < len(values) and sorted_values[stop + 1] == sorted_values[start]:
            stop += 1
        ranks[order[start : stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks
