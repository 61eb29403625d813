"""After training: fit the error model and calibrate the uncertainty on held-out episodes.

The held-out episodes are split in two, by episode: the error model (`vla_ros.model.network.
ErrorModel`) learns from the first half how large this policy's errors are where it has not been
trained, and the split-conformal quantiles are measured on the second half, which neither the
members nor the error model have seen, so the bound keeps its coverage. Without an error model
every held-out episode calibrates.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from vla_ros.learn.dataset import Episode, iter_episodes
from vla_ros.learn.replay import replay
from vla_ros.model.network import make_error_model
from vla_ros.model.uncertainty import calibrate
from vla_ros.model.vla_policy import VLAPolicy

# full-batch AdamW over the fitted episodes' steps (a few thousand). On the mobile task, episodes
# it was not fitted on were ranked best after 1000 iterations (Spearman 0.69; 0.66 after 3000):
# stopping there keeps a 64-unit network from memorising the episodes it is fitted on
FIT_ITERATIONS = 1000
FIT_LEARNING_RATE = 1e-3
FIT_WEIGHT_DECAY = 1e-2


def calibrate_policy(
    policy: VLAPolicy,
    episodes: Sequence[Episode],
    ids: Sequence[int] | None = None,
    seed: int = 0,
    log: TextIO = sys.stderr,
) -> None:
    """Fit the error model (if the policy has one) on half of `episodes`, calibrate on the rest,
    in place: sets `policy.config.calibration`, and `training.error_model_episodes` to the `ids`
    (the episodes' indices in the training dataset; None: not from it) of the fitted half."""
    config = policy.config
    u = config.uncertainty
    fitted: list[int] = []
    if policy.model.error_model is not None:
        if len(episodes) < 2:
            raise ValueError(
                "an error model needs at least 2 held-out episodes (one to fit it on, one to "
                "calibrate on): hold out more episodes or set uncertainty.error_model=false"
            )
        order = np.random.default_rng(seed).permutation(len(episodes))
        fitted = sorted(order[: len(episodes) // 2].tolist())
        loss = fit_error_model(policy, [episodes[i] for i in fitted], seed)
        log.write(
            f"error model fitted on {len(fitted)} held-out episodes "
            f"(mean squared error of the log-error {loss:.3f})\n"
        )
    result = replay(policy, [e for i, e in enumerate(episodes) if i not in fitted])
    calibration = calibrate(
        result.errors,
        result.spread,
        result.learned,
        result.predicted,
        result.valid,
        u.coverage,
        u.sigma_floor,
        policy.mc_samples,
    )
    policy.config = dataclasses.replace(
        config,
        calibration=calibration,
        training=dataclasses.replace(
            config.training,
            error_model_episodes=() if ids is None else tuple(ids[i] for i in fitted),
        ),
    )
    log.write(
        f"calibrated on {calibration.samples} held-out steps: quantiles "
        f"{[round(q, 2) for q in calibration.quantiles + calibration.variance_quantiles]} at "
        f"{calibration.coverage:.0%}\n"
    )


def fit_error_model(policy: VLAPolicy, episodes: Sequence[Episode], seed: int = 0) -> float:
    """Regress log(error + sigma_floor) on the error features of `episodes` replayed through the
    policy, for every chunk step with a demonstrated action. Returns the final training loss."""
    error_model = policy.model.error_model
    if error_model is None:
        raise ValueError("this policy has no error model (uncertainty.error_model is false)")
    result = replay(policy, episodes)
    features = torch.from_numpy(result.error_features).float()
    target = torch.from_numpy(np.log(result.errors + policy.config.uncertainty.sigma_floor)).float()
    valid = torch.from_numpy(result.valid).float()
    torch.manual_seed(seed)
    for layer in error_model.net:
        if isinstance(layer, torch.nn.Linear):
            layer.reset_parameters()
    error_model.feature_mean.copy_(features.mean(0))
    error_model.feature_std.copy_(features.std(0).clamp(min=1e-6))
    optimizer = torch.optim.AdamW(
        error_model.parameters(), lr=FIT_LEARNING_RATE, weight_decay=FIT_WEIGHT_DECAY
    )
    error_model.train()
    with torch.inference_mode(False), torch.enable_grad():
        for _ in range(FIT_ITERATIONS):
            squared = (error_model.log_error(features) - target) ** 2
            loss = (squared * valid).sum() / valid.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    error_model.eval()
    return float(loss.detach())


def recalibrate(
    checkpoint: str | Path,
    dataset_dir: str | Path,
    out_dir: str | Path,
    error_model: bool | None = None,
    seed: int = 0,
    log: TextIO = sys.stderr,
) -> Path:
    """Fit the error model and calibrate a trained checkpoint again, without retraining it.

    On `dataset_dir`'s held-out episodes when it is the dataset the checkpoint was trained on
    (the members never saw them), else on all of its episodes (say, recorded on your robot).
    error_model: add one (True) or drop it (False); None keeps what the checkpoint has.
    """
    from vla_ros.model.checkpoint import load_policy, save_policy

    policy = load_policy(checkpoint)
    config = policy.config
    if error_model is not None and error_model != config.uncertainty.error_model:
        config = config.with_overrides({"uncertainty.error_model": error_model})
        policy.config = policy.model.config = config
        policy.model.error_model = make_error_model(config)
    episodes = list(iter_episodes(dataset_dir))
    ids = list(range(len(episodes)))
    same_dataset = (
        bool(config.training.dataset)
        and Path(config.training.dataset).resolve() == Path(dataset_dir).resolve()
    )
    if same_dataset and config.training.heldout_episodes:
        ids = list(config.training.heldout_episodes)
    log.write(
        f"calibrating {checkpoint or '(shipped default)'} on {len(ids)} "
        f"{'held-out ' if same_dataset else ''}episodes of {dataset_dir}\n"
    )
    # error_model_episodes name episodes of the training dataset (the report leaves them out)
    calibrate_policy(policy, [episodes[i] for i in ids], ids if same_dataset else None, seed, log)
    out = save_policy(policy, out_dir)
    log.write(f"saved {out}\n")
    return out
