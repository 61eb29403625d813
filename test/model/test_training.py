"""Training on a tiny synthetic dataset: the loss drops, the checkpoint loads, acts, and is
calibrated; the uncertainty report runs on it."""

import io
import json
import re

import numpy as np
import pytest
import torch
from synthetic_data import ACTIONS, JOINTS, draw, write_dataset

from vla_ros.cli.main import main
from vla_ros.learn.calibration import calibrate_policy, fit_error_model, recalibrate
from vla_ros.learn.dataset import iter_episodes
from vla_ros.learn.replay import replay
from vla_ros.learn.train import _Batcher, _grounding_error, train
from vla_ros.learn.uncertainty_report import uncertainty_report
from vla_ros.model import load_policy
from vla_ros.model.config import ModelConfig
from vla_ros.model.policy import Observation
from vla_ros.model.uncertainty import spearman

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
        heldout_fraction=0.25,  # 1 episode fits the error model, 2 calibrate
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
    fitted = set(config.training.error_model_episodes)
    assert fitted and fitted < set(config.training.heldout_episodes)  # the rest calibrated
    assert policy.model.error_model is not None
    image = np.zeros((32, 32, 3), np.uint8)
    proposal = policy.select_action(
        Observation(image, "go to the red cube", np.zeros(2, np.float32))
    )
    assert np.all(np.isfinite(proposal.action)) and proposal.uncertainty > 0
    assert proposal.components["predicted_error"] > 0


def test_the_error_model_learns_where_errors_are_large(trained, dataset):
    """Refitted on episodes whose errors it can see, it ranks them far better than chance, and
    beats predicting their mean log-error."""
    policy = load_policy(trained[0])
    episodes = list(iter_episodes(dataset))
    loss = fit_error_model(policy, episodes, seed=1)
    result = replay(policy, episodes)
    target = np.log(result.errors[:, 0] + policy.config.uncertainty.sigma_floor)
    assert loss < 0.8 * target.var()
    assert spearman(result.predicted[:, 0], result.errors[:, 0]) > 0.5


def test_an_error_model_needs_two_held_out_episodes(trained, dataset):
    policy = load_policy(trained[0])
    with pytest.raises(ValueError, match="at least 2 held-out episodes"):
        calibrate_policy(policy, list(iter_episodes(dataset))[:1])


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
        # half fit the error model; memory sees every 2nd frame: enough steps left for 95 %
        heldout_fraction=0.5,
        log=log,
    )
    policy = load_policy(out)
    assert len(policy.config.conformal.quantiles) == policy.config.chunk.size
    assert "epoch   1/1" in log.getvalue()


def test_calibrate_adds_an_error_model_to_a_checkpoint_and_can_drop_it(trained, dataset, tmp_path):
    """Through the command line, as a user would; the members are left as they were."""
    source = load_policy(trained[0])
    without = recalibrate(trained[0], dataset, tmp_path / "without", error_model=False)
    dropped = load_policy(without)
    assert dropped.model.error_model is None and dropped.config.conformal.calibrated
    assert not dropped.config.training.error_model_episodes
    assert (
        main(
            [
                "calibrate",
                "--checkpoint",
                str(without),
                "--data",
                str(dataset),
                "--out",
                str(tmp_path / "with"),
                "--error-model",
            ]
        )
        == 0
    )
    added = load_policy(tmp_path / "with")
    training = added.config.training
    assert added.model.error_model is not None and added.config.uncertainty.error_model
    assert set(training.error_model_episodes) < set(training.heldout_episodes)
    for name, value in source.model.ensemble.state_dict().items():
        torch.testing.assert_close(added.model.ensemble.state_dict()[name], value)


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
    assert -1 <= report["in_distribution"]["spearman_predicted_error"] <= 1
    training = load_policy(out).config.training
    unseen = set(training.heldout_episodes) - set(training.error_model_episodes)
    assert report["episodes"] == f"held-out ({len(unseen)})"  # not what the error model saw
    assert "suggested" in stream.getvalue()


def test_too_small_a_dataset_is_refused(tmp_path):
    write_dataset(tmp_path, episodes=1, steps=4, size=(32, 32))
    with pytest.raises(ValueError, match="at least 2"):
        train(tmp_path, tmp_path / "out")


def train_tiny(data, out, overrides, epochs):
    """The tiny network trained on `data` with `overrides`, loaded as a policy."""
    return load_policy(
        train(
            data,
            out,
            {**TINY, **overrides},
            epochs=epochs,
            batch_size=16,
            learning_rate=3e-3,
            heldout_fraction=0.25,
            log=io.StringIO(),
        )
    )


def predict_still(policy, pictures, commands):
    """The policy's prediction for each picture with its command, the robot standing still."""
    still = np.zeros((len(pictures), 2), np.float32)
    prediction, _ = policy.predict(np.stack(pictures), commands, still, still)
    return prediction


def test_the_grounding_head_learns_where_the_named_square_is(tiny_bert, tmp_path):
    """One square per picture: the head has to find it. (Whether a head also reads the command
    among several objects is measured on the simulator: `vla-ros eval --diagnose`, and the
    shipped arm's command-swap test.)"""
    policy = train_tiny(
        write_dataset(tmp_path / "data", episodes=12, steps=16, size=(32, 32), colours=("red",)),
        tmp_path / "checkpoint",
        {"text.pretrained": tiny_bert, "grounding.weight": 1.0, "vision.stem_patch": 2},
        epochs=20,
    )
    rng = np.random.default_rng(5)
    pictures = [draw((32, 32), {"red": (x, 0.5)}, rng) for x in (0.2, 0.8)]
    prediction = predict_still(policy, pictures, ["go to the red cube"] * 2)
    left_x, right_x = prediction.target_pixel[:, 0]
    assert left_x < -0.2 and right_x > 0.2, prediction.target_pixel  # squares at x = -0.6, 0.6


def test_the_pointer_learns_which_of_two_squares_the_command_names(tmp_path):
    """A red and a blue square in every picture: only the command says which one to point at.
    (The packaged MiniLM: the tiny random BERT barely tells "red" from "blue", cosine 0.98.)"""
    policy = train_tiny(
        write_dataset(tmp_path / "data", episodes=96, steps=16, size=(32, 32)),
        tmp_path / "checkpoint",
        {
            "fusion.kind": "pointer",
            "grounding.weight": 1.0,
            "vision.stem_patch": 2,
            "uncertainty.ensemble": 1,
        },
        epochs=10,
    )
    rng = np.random.default_rng(7)
    pointed, turned = [], []
    while len(pointed) < 40:  # placements never seen in training, the squares well apart
        red, blue = rng.uniform(0.1, 0.9, 2)
        if abs(red - blue) < 0.3:
            continue
        picture = draw((32, 32), {"red": (red, 0.5), "blue": (blue, 0.5)}, rng)
        prediction = predict_still(
            policy, [picture, picture], ["go to the red cube", "go to the blue cube"]
        )
        named, other = np.array([2 * red - 1, 2 * blue - 1]), np.array([2 * blue - 1, 2 * red - 1])
        x = prediction.target_pixel[:, 0]
        pointed.extend(np.abs(x - named) < np.abs(x - other))
        # and it turns toward the named square (angular_z > 0: left), as the expert does
        red_turn, blue_turn = prediction.action[:, 0, 1]
        turned.append((red_turn > blue_turn) == (red < blue))
    assert np.mean(pointed) >= 0.9, np.mean(pointed)
    assert np.mean(turned) >= 0.9, np.mean(turned)


def test_the_presence_head_learns_which_commands_name_nothing_in_the_picture(tiny_bert, tmp_path):
    """Red squares only; "the red cube" is demonstrated by driving to it, "the blue cube" by
    standing still (labelled as naming nothing). The head must tell the two apart, and a
    command it believes names nothing must carry its doubt into the uncertainty."""
    data = write_dataset(
        tmp_path / "data", episodes=10, steps=12, size=(32, 32), colours=("red",), refusals=10
    )
    assert sum(not e.names_target for e in iter_episodes(data)) == 10
    policy = train_tiny(
        data,
        tmp_path / "checkpoint",
        {"text.pretrained": tiny_bert, "grounding.presence": 1.0},
        epochs=30,
    )
    picture = draw((32, 32), {"red": (0.5, 0.5)}, np.random.default_rng(5))
    prediction = predict_still(
        policy, [picture, picture], ["go to the red cube", "go to the blue cube"]
    )
    named, absent = prediction.named
    assert named > 0.7 and absent < 0.3, prediction.named
    # Its doubt is carried into the published uncertainty: absent_uncertainty x P(names nothing).
    absent = policy.config.grounding.absent_uncertainty * (1 - prediction.named)
    np.testing.assert_allclose(prediction.absent_penalty, absent)
    np.testing.assert_allclose(
        prediction.uncertainty, prediction.bound + prediction.penalty[:, None] + absent[:, None]
    )
    assert absent[1] > absent[0] + 1.0


def test_shifting_a_picture_moves_its_grounding_label_with_it():
    config = ModelConfig(ACTIONS, JOINTS, image_size=(32, 48))
    batcher = _Batcher(config, None, None)
    images = torch.zeros(64, 3, 32, 48)
    row, col = 10, 30
    images[:, :, row, col] = 1.0
    shifted, moved = batcher._augment(images, np.random.default_rng(0))
    assert moved.abs().sum() > 0, "some pictures moved"
    for picture, (dx, dy) in zip(shifted, moved, strict=True):
        bright = (picture[0] == picture[0].max()).nonzero()
        assert len(bright) == 1, "a shift repeats edges but keeps the one bright pixel"
        # a label (x, y) in [-1, 1] moves by 2 / width per pixel
        assert bright[0, 1] - col == pytest.approx(float(dx) * 48 / 2)
        assert bright[0, 0] - row == pytest.approx(float(dy) * 32 / 2)


def test_frames_without_a_known_target_position_add_no_grounding_loss():
    predicted = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    actual = torch.tensor([[float("nan"), float("nan")], [0.0, 0.5]])
    assert _grounding_error(predicted, actual).tolist() == [0.0, 0.25]


def train_without_moving(data, out, options, **start):
    """One epoch that cannot move a weight: the checkpoint holds where training started."""
    return train(data, out, epochs=1, learning_rate=1e-9, log=io.StringIO(), **options, **start)


def assert_same_weights(expected, actual):
    weights = actual.model.ensemble.stacked.state_dict()
    for name, value in expected.model.ensemble.stacked.state_dict().items():
        torch.testing.assert_close(weights[name], value)


def test_a_dagger_round_continues_from_the_round_before(tiny_bert, tmp_path):
    data = write_dataset(tmp_path / "data", episodes=12, steps=16, size=(32, 32))
    options = {"config_overrides": {**TINY, "text.pretrained": tiny_bert}, "batch_size": 16}
    options["heldout_fraction"] = 0.25
    before = train(data, tmp_path / "round0", epochs=2, log=io.StringIO(), **options)
    write_dataset(data, episodes=12, steps=16, size=(32, 32), seed=1)  # the learner's episodes
    # the continuation is the round before, on its scales
    after = train_without_moving(data, tmp_path / "round1", options, start_from=before)
    first, second = load_policy(before), load_policy(after)
    assert_same_weights(first, second)
    assert second.config.action_stats == first.config.action_stats
    assert second.config.proprio_stats == first.config.proprio_stats
    held_before = set(first.config.training.heldout_episodes)
    added = set(second.config.training.heldout_episodes) - held_before
    assert held_before < set(second.config.training.heldout_episodes)
    assert len(added) == 3 and min(added) >= 12  # a quarter of the new episodes, never an old one
    assert second.config.training.episodes == 24

    other = write_dataset(tmp_path / "other", episodes=24, steps=16, size=(32, 32))
    with pytest.raises(ValueError, match="not on the first episodes"):
        train(other, tmp_path / "x", epochs=0, start_from=before, log=io.StringIO(), **options)


def test_training_can_start_from_a_policy_trained_on_other_data(tiny_bert, tmp_path):
    options = {"config_overrides": {**TINY, "text.pretrained": tiny_bert}, "batch_size": 16}
    options["heldout_fraction"] = 0.25
    reaching = write_dataset(tmp_path / "reach", episodes=12, steps=16, size=(32, 32))
    source = train(reaching, tmp_path / "reach_ck", epochs=2, log=io.StringIO(), **options)
    picking = write_dataset(tmp_path / "pick", episodes=12, steps=16, size=(32, 32), seed=3)
    # the same ensemble size (two members), then three: member 2 starts as its member 0
    started = train_without_moving(picking, tmp_path / "pick_ck", options, init_from=source)
    fresh = train(picking, tmp_path / "fresh", epochs=1, log=io.StringIO(), **options)
    second = load_policy(started)
    assert_same_weights(load_policy(source), second)
    # everything but the weights comes from the new data
    assert second.config.action_stats == load_policy(fresh).config.action_stats
    assert second.config.training.dataset == str(picking.resolve())
    three = {
        **options,
        "config_overrides": {**options["config_overrides"], "uncertainty.ensemble": 3},
    }
    ensemble = train_without_moving(picking, tmp_path / "three", three, init_from=source)
    for value in load_policy(ensemble).model.ensemble.stacked.state_dict().values():
        torch.testing.assert_close(value[2], value[0])

    with pytest.raises(ValueError, match="not both"):
        train(picking, tmp_path / "x", start_from=source, init_from=source, **options)
