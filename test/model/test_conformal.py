import numpy as np
import pytest

from vla_ros.model.config import WORST_CASE_ERROR
from vla_ros.model.uncertainty import (
    action_bound,
    auroc,
    calibrate,
    conformal_quantile,
    language_novelty,
    language_penalty,
    spearman,
)


def test_conformal_quantile_uses_the_finite_sample_rank():
    scores = np.arange(1, 20)  # n = 19: rank ceil(20 * 0.9) = 18
    assert conformal_quantile(scores, 0.9) == 18
    assert conformal_quantile(np.arange(5), 0.95) == float("inf")  # too few for 95 %


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_calibrated_bound_covers_the_target_fraction_on_fresh_data(coverage):
    """Heteroscedastic synthetic errors whose scale the model's sigma only partly knows."""
    rng = np.random.default_rng(1)

    def draw(n):
        sigma = rng.uniform(0.02, 0.5, (n, 2))
        errors = np.abs(rng.normal(0, 1, (n, 2))) * sigma * rng.uniform(0.5, 2.0, (n, 2))
        return errors, sigma

    errors, sigma = draw(4000)
    calibration = calibrate(errors, sigma, None, None, np.ones_like(errors, bool), coverage, 0.01)
    assert calibration.samples == 4000 and len(calibration.quantiles) == 2
    fresh_errors, fresh_sigma = draw(40000)
    bound = np.asarray(calibration.quantiles) * (fresh_sigma + 0.01)
    achieved = np.mean(fresh_errors <= bound, axis=0)
    assert np.all(np.abs(achieved - coverage) < 0.02), achieved


def test_calibration_ignores_steps_past_the_end_of_an_episode():
    errors = np.array([[0.1, 99.0]] * 50)
    valid = np.array([[True, False]] * 50)
    valid[:30, 1] = True
    errors[:30, 1] = 0.2
    calibration = calibrate(errors, np.zeros_like(errors), None, None, valid, 0.9, 0.1)
    np.testing.assert_allclose(calibration.quantiles, [1.0, 2.0])


def test_the_larger_of_two_calibrated_bounds_still_covers():
    """Spread knows unfamiliar inputs, learned sigma knows noisy situations: keep both bounds."""
    rng = np.random.default_rng(2)

    def draw(n):
        spread = rng.uniform(0.01, 0.3, (n, 1))
        learned = rng.uniform(0.01, 0.3, (n, 1))
        errors = np.abs(rng.normal(0, 1, (n, 1))) * np.where(
            rng.random((n, 1)) < 0.5, spread, learned
        )
        return errors, spread, learned

    errors, spread, learned = draw(4000)
    calibration = calibrate(errors, spread, learned, None, np.ones_like(errors, bool), 0.9, 0.01)
    assert len(calibration.variance_quantiles) == 1
    errors, spread, learned = draw(40000)
    bound = action_bound(calibration, spread, learned, None, 0.01)
    assert bound.shape == (40000, 1)
    assert np.all(bound >= action_bound(calibration, spread, None, None, 0.01))
    assert 0.9 <= np.mean(errors <= bound) < 0.99


def test_an_error_estimate_added_to_the_spread_is_calibrated_with_it():
    """Where a predictor knows most of the error's scale, the bound follows it and still covers;
    and it never falls below the spread's own share."""
    rng = np.random.default_rng(3)

    def draw(n):
        spread = rng.uniform(0.0, 0.05, (n, 1))
        predicted = rng.uniform(0.01, 0.5, (n, 1))
        errors = np.abs(rng.normal(0, 1, (n, 1))) * (spread + predicted)
        return errors, spread, predicted

    errors, spread, predicted = draw(4000)
    valid = np.ones_like(errors, bool)
    calibration = calibrate(errors, spread, None, predicted, valid, 0.9, 0.01)
    errors, spread, predicted = draw(40000)
    bound = action_bound(calibration, spread, None, predicted, 0.01)
    assert abs(np.mean(errors <= bound) - 0.9) < 0.02
    q = calibration.quantiles[0]
    np.testing.assert_allclose(bound, q * (spread + 0.01 + predicted))
    assert np.all(bound >= action_bound(calibration, spread, None, None, 0.01))


def test_the_bound_never_exceeds_the_worst_possible_error():
    """No two actions in [-1, 1] differ by more than 2: a larger bound would say nothing more."""
    calibration = calibrate(
        np.full((40, 1), 0.5), np.full((40, 1), 0.1), None, None, np.ones((40, 1), bool), 0.9, 0.01
    )
    spread = np.array([[0.01], [0.5], [50.0]])
    bound = action_bound(calibration, spread, None, np.array([[0.0], [0.0], [9.0]]), 0.01)
    assert bound[0, 0] < bound[1, 0] <= WORST_CASE_ERROR
    assert bound[2, 0] == WORST_CASE_ERROR


def test_language_penalty_is_monotone_and_bounded():
    novelty = np.linspace(0, 1, 21)
    penalty = language_penalty(novelty, 0.2, 0.6)
    assert np.all(np.diff(penalty) >= 0)
    assert penalty[0] == 0 and penalty[-1] == 2.0
    assert language_penalty(np.array([0.2]), 0.2, 0.6)[0] == 0.0


def test_novelty_of_a_training_instruction_is_zero():
    reference = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(
        language_novelty(np.array([[2.0, 0.0], [1.0, 1.0]]), reference), [0.0, 1 - np.sqrt(0.5)]
    )
    assert language_novelty(np.ones((3, 2)), np.zeros((0, 2))).tolist() == [0, 0, 0]


def test_paraphrase_is_less_novel_than_nonsense_with_the_packaged_minilm():
    from vla_ros.model.config import TextConfig, UncertaintyConfig
    from vla_ros.model.encoders import TextEncoder

    text = TextEncoder(TextConfig())
    training = [
        "go to the red cube",
        "drive to the red cube",
        "go to the blue ball",
        "find the blue ball",
    ]
    reference = text.encode(training).pooled.numpy()
    queries = [
        "move to the red cube",
        "head towards the blue ball",
        "purple elephant dances",
        "banana telescope quantum",
    ]
    novelty = language_novelty(text.encode(queries).pooled.numpy(), reference)
    assert max(novelty[:2]) < min(novelty[2:])
    ok = UncertaintyConfig().novelty_ok  # the default threshold separates them
    assert max(novelty[:2]) < ok < min(novelty[2:])


def test_rank_metrics():
    x = np.arange(10.0)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert auroc(x, x >= 5) == 1.0
    assert auroc(-x, x >= 5) == 0.0
    assert auroc(np.ones(10), x >= 5) == 0.5  # ties: no information
    assert np.isnan(auroc(x, np.zeros(10, bool)))
