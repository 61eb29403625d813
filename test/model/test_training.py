"""Training on a tiny synthetic dataset: the loss drops, the checkpoint loads, acts, and is
calibrated; the uncertainty report runs on it."""

import io
import json
import re

import numpy as np
import pytest
from synthetic_data import write_dataset

from vla_ros.learn.train import train
from vla_ros.learn.uncertainty_report import uncertainty_report
from vla_ros.model import load_policy
from vla_ros.model.policy import Observation

TINY = {
    "vision.channels": [8, 16],
    # the configuration this loss bound was measured with (the defaults have moved since)
    "fusion.kind": "concat",
    "proprio.velocities": True,
    "fusion.d_model": 16,
    "fusion.hidden": 32,
    "fusion.heads": 2,
    "fusion.blocks": 1,
    "uncertainty.ensemble": 2,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), episodes=12, steps=16, size=(32, 32))


@pytest.fixture(scope="module")
def trained(dataset, tiny_bert, tmp_path_factory):
    log = io.StringIO()
    out = train(
        dataset,
        tmp_path_factory.mktemp("ckpt"),
        {**TINY, "text.pretrained": tiny_bert},
        epochs=6,
        batch_size=16,
        learning_rate=3e-3,
        log=log,
    )
    return out, log.getvalue()


def test_loss_drops_and_progress_is_reported(trained):
    _, log = trained
    losses = [float(x) for x in re.findall(r"epoch +\d+/6 +loss ([0-9.]+)", log)]
    assert len(losses) == 6
    assert losses[-1] < 0.6 * losses[0]
    assert "calibrated on" in log


def test_checkpoint_loads_acts_and_is_calibrated(trained, dataset):
    out, _ = trained
    policy = load_policy(out)
    config = policy.config
    assert config.conformal.calibrated and config.conformal.samples > 0
    assert set(config.training_instructions) <= {"go to the red cube", "go to the blue cube"}
    assert config.training.heldout_episodes and config.training.dataset == str(dataset.resolve())
    image = np.zeros((32, 32, 3), np.uint8)
    proposal = policy.select_action(
        Observation(image, "go to the red cube", np.zeros(2, np.float32))
    )
    assert np.all(np.isfinite(proposal.action)) and proposal.uncertainty > 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"memory.kind": "gru", "memory.window": 3, "chunk.size": 3, "chunk.replan_every": 2},
        {
            "uncertainty.variance_head": True,
            "fusion.kind": "transformer",
            "uncertainty.mc_samples": 4,
        },
    ],
)
def test_sequence_chunk_and_variance_models_train(dataset, tiny_bert, tmp_path, overrides):
    log = io.StringIO()
    out = train(
        dataset,
        tmp_path,
        {**TINY, "text.pretrained": tiny_bert, **overrides},
        epochs=1,
        batch_size=32,
        heldout_fraction=0.34,  # memory sees every 2nd frame: enough steps for 95 %
        log=log,
    )
    policy = load_policy(out)
    assert len(policy.config.conformal.quantiles) == policy.config.chunk.size
    assert "epoch   1/1" in log.getvalue()


def test_uncertainty_report_writes_json_and_plot(trained, dataset, tmp_path):
    out, _ = trained
    stream = io.StringIO()
    report = uncertainty_report(out, dataset, tmp_path, stream=stream)
    saved = json.loads((tmp_path / "uncertainty_report.json").read_text())
    assert (
        saved["conditions"].keys()
        == report["conditions"].keys()
        >= {"noise_image", "blackout", "nonsense"}
    )
    assert (tmp_path / "uncertainty_report.png").stat().st_size > 0
    assert -1 <= report["in_distribution"]["spearman"] <= 1
    assert report["episodes"].startswith("held-out")
    assert "suggested" in stream.getvalue()


def test_too_small_a_dataset_is_refused(tmp_path):
    write_dataset(tmp_path, episodes=1, steps=4, size=(32, 32))
    with pytest.raises(ValueError, match="at least 2"):
        train(tmp_path, tmp_path / "out")
