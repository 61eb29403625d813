"""Does the uncertainty track real error? A report for any checkpoint on any dataset.

On the held-out episodes (those the checkpoint's training held out and did not fit its error model
on, when it was trained on this dataset; else every episode), replayed as the policy runs:
- in distribution: Spearman rank correlation of uncertainty and action error; AUROC of the
  uncertainty for flagging large errors (the worst 10 % of in-distribution steps); the empirical
  coverage of the conformal bound;
- corrupted pictures (Gaussian noise, blackout, inverted colours) and replaced commands (an unseen
  object, nonsense): mean uncertainty, the fraction of steps above the in-distribution 95th
  percentile (the prototype's measure in FINDINGS.md), the fractions of steps the safety node
  would slow down and stop at the scene's configured thresholds (for datasets of a simulator
  scene), the AUROC for telling them from normal steps, and, for pictures, the same error
  metrics as in distribution.
Writes `uncertainty_report.json` and `uncertainty_report.png` and prints a table.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from vla_ros import graph
from vla_ros.learn.dataset import iter_episodes, read_meta
from vla_ros.learn.replay import ReplayResult, replay
from vla_ros.model.config import WORST_CASE_ERROR
from vla_ros.model.uncertainty import auroc, spearman

LARGE_ERROR_QUANTILE = 0.9  # "large error": worse than 90 % of in-distribution steps
# how far above a picture's worst case the suggested stop sits: at the worst case the robot still
# moves at STOP_MARGIN / (stop - slowdown) of its speed (about 10 %), enough to turn out of a view
STOP_MARGIN = 0.2


def _noise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rng.normal(127.5, 64.0, images.shape), 0, 255).astype(np.uint8)


def _blackout(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.zeros_like(images)


def _invert(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 255 - images


IMAGE_CORRUPTIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "noise_image": _noise,
    "blackout": _blackout,
    "inverted_colours": _invert,
}
COMMANDS = {
    "unseen_object": "go to the purple elephant",
    "nonsense": "banana telescope quantum sandwich",
}


def uncertainty_report(
    checkpoint: str | Path,
    dataset_dir: str | Path,
    out_dir: str | Path | None = None,
    heldout_only: bool = True,
    device: str = "cpu",
    stream: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Measure, print, and (with out_dir) write the JSON and the plot. Returns the JSON dict."""
    from vla_ros.model.checkpoint import load_policy

    policy = load_policy(checkpoint, device=device)
    episodes = list(iter_episodes(dataset_dir))
    training = policy.config.training
    chosen = "all"
    same_dataset = Path(training.dataset).resolve() == Path(dataset_dir).resolve()
    if heldout_only and training.heldout_episodes and same_dataset:
        unseen = set(training.heldout_episodes) - set(training.error_model_episodes)
        episodes = [episodes[i] for i in sorted(unseen)]
        chosen = "held-out"
    normal = replay(policy, episodes)
    u_in, e_in = normal.first
    threshold = float(np.quantile(e_in, LARGE_ERROR_QUANTILE))
    p95 = float(np.quantile(u_in, 0.95))
    report: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "dataset": str(dataset_dir),
        "episodes": f"{chosen} ({len(episodes)})",
        "units": "normalised action units (1.0 = half a channel's trained range)",
        "large_error_threshold": threshold,
        "in_distribution": {
            **_error_metrics(normal, threshold),
            "bound_coverage": float(np.mean(e_in <= normal.bound[:, 0])),
            "target_coverage": policy.config.conformal.coverage,
            "calibrated": policy.config.conformal.calibrated,
        },
        "conditions": {},
        "suggested_thresholds": {
            # slow down on the 5 % least certain normal steps. A stop freezes the view, and the
            # robot would stay frozen on a view its policy is unsure of, so the stop sits above
            # what a picture alone can reach (the bound is at most WORST_CASE_ERROR): it is left
            # to commands unlike the training ones, and stays well above ordinary steps
            "uncertainty_slowdown": p95,
            "uncertainty_stop": max(WORST_CASE_ERROR + STOP_MARGIN, 2.0 * p95),
        },
    }
    results: dict[str, ReplayResult] = {"in_distribution": normal}
    for name, transform in IMAGE_CORRUPTIONS.items():
        results[name] = replay(policy, episodes, image_transform=transform)
    for name, command in COMMANDS.items():
        results[name] = replay(policy, episodes, instruction=command)
    configured = _configured_thresholds(read_meta(dataset_dir).scene)
    if configured is not None:
        report["configured_thresholds"] = dict(zip(("slowdown", "stop"), configured, strict=True))
    for name, result in list(results.items())[1:]:
        u, _ = result.first
        entry = {
            "mean_uncertainty": float(np.mean(u)),
            "fraction_above_in_distribution_p95": float(np.mean(u > p95)),
            **(
                {}
                if configured is None
                else {
                    "fraction_slowed_or_stopped": float(np.mean(u > configured[0])),
                    "fraction_stopped": float(np.mean(u >= configured[1])),
                }
            ),
            "auroc_vs_in_distribution": auroc(
                np.concatenate([u_in, u]), np.r_[np.zeros(len(u_in)), np.ones(len(u))]
            ),
        }
        if name in IMAGE_CORRUPTIONS:  # the demonstrated action is still the right answer
            entry.update(_error_metrics(result, threshold))
        report["conditions"][name] = entry
    report["in_distribution"]["mean_uncertainty"] = float(np.mean(u_in))
    report["ood_mean_above_in_distribution"] = all(
        c["mean_uncertainty"] > report["in_distribution"]["mean_uncertainty"]
        for c in report["conditions"].values()
    )
    _print(report, stream)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "uncertainty_report.json").write_text(json.dumps(report, indent=2) + "\n")
        _plot(results, report, out / "uncertainty_report.png")
    return report


def _configured_thresholds(scene: str) -> tuple[float, float] | None:
    """The safety node's (uncertainty_slowdown, uncertainty_stop) for a simulator scene's config;
    None for data of no simulator scene (a bag, LeRobot data)."""
    if scene not in graph.SCENE_CONFIGS:
        return None
    values = graph.scene_parameters(scene, "safety_node")
    return float(values["uncertainty_slowdown"]), float(values["uncertainty_stop"])


def _error_metrics(result: ReplayResult, threshold: float) -> dict[str, float]:
    u, e = result.first
    metrics = {
        "mean_error": float(np.mean(e)),
        "spearman": spearman(u, e),
        "auroc_large_error": auroc(u, e > threshold),
        # what each signal would rank alone
        "spearman_spread": spearman(result.spread[:, 0], e),
    }
    if result.predicted is not None:
        metrics["spearman_predicted_error"] = spearman(result.predicted[:, 0], e)
    return metrics


def _print(report: dict[str, Any], stream: TextIO) -> None:
    ind = report["in_distribution"]
    alone = ""
    if "spearman_predicted_error" in ind:
        alone = f", of the error model alone {ind['spearman_predicted_error']:.2f}"
    stream.write(
        f"uncertainty report ({report['episodes']} episodes; {report['units']})\n"
        f"in distribution: mean U {ind['mean_uncertainty']:.3f}, spearman {ind['spearman']:.2f}, "
        f"AUROC(large error) {ind['auroc_large_error']:.2f}, bound coverage "
        f"{ind['bound_coverage']:.1%} (target {ind['target_coverage']:.0%}); spearman of the "
        f"spread alone {ind['spearman_spread']:.2f}{alone}\n"
        f"{'condition':<20}{'mean U':>9}{'>p95':>7}{'slowed':>8}{'stopped':>9}{'AUROC ood':>11}"
        f"{'spearman':>10}{'AUROC err':>11}\n"
    )
    nan = float("nan")
    for name, c in report["conditions"].items():
        stream.write(
            f"{name:<20}{c['mean_uncertainty']:>9.3f}{c['fraction_above_in_distribution_p95']:>7.2f}"
            f"{c.get('fraction_slowed_or_stopped', nan):>8.2f}"
            f"{c.get('fraction_stopped', nan):>9.2f}"
            f"{c['auroc_vs_in_distribution']:>11.2f}{c.get('spearman', nan):>10.2f}"
            f"{c.get('auroc_large_error', nan):>11.2f}\n"
        )
    if "configured_thresholds" in report:
        t = report["configured_thresholds"]
        stream.write(
            f"slowed, stopped: share of steps at the scene's configured uncertainty_slowdown "
            f"{t['slowdown']:g} / uncertainty_stop {t['stop']:g}\n"
        )
    t = report["suggested_thresholds"]
    stream.write(
        f"suggested: uncertainty_slowdown {t['uncertainty_slowdown']:.3f}, "
        f"uncertainty_stop {t['uncertainty_stop']:.3f}\n"
    )


def _plot(results: dict[str, ReplayResult], report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (scatter, spread) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in ("in_distribution", *IMAGE_CORRUPTIONS):
        u, e = results[name].first
        scatter.scatter(u, e, s=6, alpha=0.5, label=name)
    scatter.set_xlabel("published uncertainty U")
    scatter.set_ylabel("action error (largest channel, normalised)")
    scatter.set_title("uncertainty vs error")
    scatter.legend(fontsize=8)
    names = list(results)
    spread.boxplot([results[n].first[0] for n in names], showfliers=False)
    spread.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right", fontsize=8)
    for label, value in report["suggested_thresholds"].items():
        spread.axhline(value, linestyle="--", linewidth=1, label=f"{label} {value:.2f}")
    spread.set_ylabel("published uncertainty U")
    spread.set_title("uncertainty by condition")
    spread.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
