import math

import numpy as np
import pytest
import torch

from vla_ros.model.checkpoint import build_policy
from vla_ros.model.policy import ActionProposal, Observation


def policy_of(tiny_config, text_encoder, overrides=None, **kwargs):
    return build_policy(tiny_config(overrides), text=text_encoder, **kwargs)


def test_select_action_meets_the_contract(tiny_config, text_encoder, observation):
    policy = policy_of(tiny_config, text_encoder)
    proposal = policy.select_action(observation)
    assert isinstance(proposal, ActionProposal)
    assert proposal.action.shape == (2,) and proposal.action.dtype == np.float32
    assert np.all(np.isfinite(proposal.action)) and proposal.uncertainty >= 0
    assert set(proposal.components) >= {
        "action_bound",
        "spread",
        "learned_sigma",
        "language_novelty",
        "language_penalty",
    }
    assert proposal.uncertainty == pytest.approx(
        proposal.components["action_bound"] + proposal.components["language_penalty"]
    )
    low, high = policy.config.actions.low, policy.config.actions.high
    assert np.all(proposal.action >= low) and np.all(proposal.action <= high)
    assert policy.action_names == ("linear_x", "angular_z")
    assert "uncertainty" in policy.describe()


def test_without_mc_the_same_observation_gives_the_same_proposal(
    tiny_config, text_encoder, observation
):
    policy = policy_of(tiny_config, text_encoder)
    first, second = policy.select_action(observation), policy.select_action(observation)
    np.testing.assert_array_equal(first.action, second.action)
    assert first.uncertainty == second.uncertainty


def test_mc_dropout_samples_and_can_be_overridden(tiny_config, text_encoder, observation):
    policy = policy_of(tiny_config, text_encoder, {"uncertainty.mc_samples": 4}, mc_samples=8)
    assert policy.mc_samples == 8
    first, second = policy.select_action(observation), policy.select_action(observation)
    assert not np.array_equal(first.action, second.action)
    assert first.components["spread"] > 0
    with pytest.raises(ValueError, match="mc_samples"):
        policy_of(tiny_config, text_encoder, {"uncertainty.mc_samples": 4}, mc_samples=1)
    assert policy_of(tiny_config, text_encoder, mc_samples=8).mc_samples == 0  # no MC: ignored


def test_learned_variance_is_a_bound_of_its_own(tiny_config, text_encoder, observation):
    policy = policy_of(tiny_config, text_encoder, {"uncertainty.variance_head": True})
    proposal = policy.select_action(observation)
    c = proposal.components
    floor = policy.config.uncertainty.sigma_floor
    assert c["learned_sigma"] > 0
    assert c["action_bound"] == pytest.approx(max(c["spread"], c["learned_sigma"]) + floor)


def test_the_error_model_estimate_is_added_to_the_spread(tiny_config, text_encoder, observation):
    policy = policy_of(
        tiny_config, text_encoder, {"uncertainty.error_model": True, "chunk.size": 3}
    )
    proposal = policy.select_action(observation)
    c = proposal.components
    floor = policy.config.uncertainty.sigma_floor
    assert c["predicted_error"] > 0
    assert c["action_bound"] == pytest.approx(c["spread"] + floor + c["predicted_error"])
    prediction, _ = policy.predict(
        np.stack([observation.image] * 2), ["go to the red cube"] * 2, np.zeros((2, 2)), None
    )
    assert prediction.predicted.shape == (2, 3)
    assert prediction.error_features.shape == (2, 3 + 2 * 3 * 2 + policy.config.fusion.hidden)


def test_chunks_are_served_from_a_queue_and_refilled_every_m_steps(
    tiny_config, text_encoder, observation
):
    policy = policy_of(tiny_config, text_encoder, {"chunk.size": 4, "chunk.replan_every": 3})
    calls = []
    policy.model.register_forward_hook(lambda *args: calls.append(1))
    proposals = [policy.select_action(observation) for _ in range(7)]
    assert len(calls) == 3  # steps 0, 3, 6
    assert [p.components["chunk_step"] for p in proposals] == [0, 1, 2, 0, 1, 2, 0]
    policy.reset()
    policy.select_action(observation)
    assert len(calls) == 4


def test_memory_carries_state_and_resets_on_a_new_instruction(
    tiny_config, text_encoder, observation
):
    policy = policy_of(tiny_config, text_encoder, {"memory.kind": "gru"})
    first = policy.select_action(observation)
    second = policy.select_action(observation)
    assert not np.array_equal(first.action, second.action)
    other = Observation(observation.image, "go to the blue cube", observation.joint_positions)
    policy.select_action(other)
    again = policy.select_action(observation)  # new instruction again: fresh state
    np.testing.assert_allclose(again.action, first.action, rtol=1e-5, atol=1e-6)
    policy.select_action(observation)
    policy.reset()
    np.testing.assert_allclose(
        policy.select_action(observation).action, first.action, rtol=1e-5, atol=1e-6
    )


def test_text_encoder_runs_once_per_instruction_not_per_step_or_member(
    tiny_config, text_encoder, observation
):
    policy = policy_of(tiny_config, text_encoder, {"uncertainty.ensemble": 3})
    calls = []
    handle = policy.text.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        instruction = "go to the green sphere now"
        for _ in range(5):
            policy.select_action(
                Observation(observation.image, instruction, observation.joint_positions)
            )
    finally:
        handle.remove()
    assert len(calls) == 1


@pytest.mark.parametrize("fusion", ["cross_attention", "transformer"])
def test_attention_map_over_the_picture(tiny_config, text_encoder, observation, fusion):
    policy = policy_of(tiny_config, text_encoder, {"fusion.kind": fusion})
    policy.select_action(observation)
    assert policy.last_attention.shape == (4, 4)
    assert policy.last_attention.sum() == pytest.approx(1.0, abs=1e-5)


def test_unknown_command_raises_the_uncertainty(tiny_config, text_encoder, observation):
    # the tiny random text model's novelties are small: thresholds to match
    policy = policy_of(
        tiny_config, text_encoder, {"uncertainty.novelty_ok": 0.0, "uncertainty.novelty_bad": 0.05}
    )
    known = policy.select_action(observation)
    odd = policy.select_action(
        Observation(observation.image, "xylophone quantum banana", observation.joint_positions)
    )
    assert (
        odd.components["language_novelty"]
        > known.components["language_novelty"]
        == pytest.approx(0, abs=1e-6)
    )
    assert odd.components["language_penalty"] > 0
    assert odd.uncertainty > known.uncertainty + odd.components["language_penalty"] / 2


def test_nan_weights_give_a_non_finite_action_the_caller_can_see(
    tiny_config, text_encoder, observation
):
    policy = policy_of(tiny_config, text_encoder)
    with torch.no_grad():
        policy.model.ensemble.stacked.mean.bias.fill_(float("nan"))
    proposal = policy.select_action(observation)
    assert not np.all(np.isfinite(proposal.action))
    assert math.isnan(proposal.uncertainty)


def test_temporal_ensembling_averages_every_chunks_prediction_for_this_step_oldest_first(
    tiny_config, text_encoder, observation
):
    decay = 0.5
    policy = policy_of(
        tiny_config,
        text_encoder,
        {"chunk.size": 4, "chunk.temporal_ensembling": True, "chunk.ensemble_decay": decay},
    )
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 256, observation.image.shape, dtype=np.uint8) for _ in range(6)]
    chunks = []  # what each step's inference predicts for it and the next three steps
    for picture in pictures:
        prediction, _ = policy.predict(
            picture[None], [observation.instruction], observation.joint_positions[None], None
        )
        chunks.append((prediction.action[0], prediction.uncertainty[0]))
    policy.reset()
    proposals = [
        policy.select_action(Observation(p, observation.instruction, observation.joint_positions))
        for p in pictures
    ]
    for step in (0, 2, 5):
        made = list(range(max(0, step - 3), step + 1))  # the chunks that predicted this step
        weights = np.exp(-decay * np.arange(len(made)))  # the oldest weighted exp(0)
        weights /= weights.sum()
        action = sum(w * chunks[m][0][step - m] for w, m in zip(weights, made, strict=True))
        uncertainty = sum(w * chunks[m][1][step - m] for w, m in zip(weights, made, strict=True))
        np.testing.assert_allclose(proposals[step].action, action, rtol=1e-5, atol=1e-6)
        assert proposals[step].uncertainty == pytest.approx(uncertainty, rel=1e-5)
        assert proposals[step].components["ensembled_chunks"] == len(made)
    policy.reset()  # a fresh start forgets the chunks
    first = policy.select_action(
        Observation(pictures[0], observation.instruction, observation.joint_positions)
    )
    np.testing.assert_allclose(first.action, chunks[0][0][0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="replan_every 1"):
        tiny_config({"chunk.size": 4, "chunk.replan_every": 2, "chunk.temporal_ensembling": True})
