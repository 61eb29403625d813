"""The ensemble runs as one vmapped pass; it must equal running each member on its own."""

import pytest
import torch
from torch.func import functional_call

from vla_ros.model.config import WORST_CASE_ERROR, FusionKind, MemoryKind
from vla_ros.model.encoders import TextEmbedding
from vla_ros.model.network import Ensemble, ErrorModel, error_features, make_members
from vla_ros.model.vla_policy import mc_dropout

COMBOS = [(kind, MemoryKind.NONE) for kind in FusionKind] + [
    (FusionKind.CONCAT, MemoryKind.GRU),
    (FusionKind.TRANSFORMER, MemoryKind.GRU),
]


def inputs(config, batch=2):
    torch.manual_seed(1)
    mask = torch.zeros(batch, 16, dtype=torch.bool)
    mask[:, :5] = True
    text = TextEmbedding(torch.randn(batch, 16, 32), mask, torch.randn(batch, 32))
    return torch.randn(batch, 3, *config.image_size), text, torch.randn(batch, config.proprio_dim)


def ensemble_of(tiny_config, fusion, memory, **extra):
    config = tiny_config(
        {
            "fusion.kind": fusion.value,
            "memory.kind": memory.value,
            "chunk.size": 3,
            "uncertainty.ensemble": 3,
            **extra,
        }
    )
    members = make_members(config, 32, None, seed=0)
    return config, members, Ensemble(members).eval()


@pytest.mark.parametrize(("fusion", "memory"), COMBOS)
def test_batched_ensemble_equals_each_member_run_alone(tiny_config, fusion, memory):
    config, members, ensemble = ensemble_of(
        tiny_config, fusion, memory, **{"uncertainty.variance_head": True}
    )
    vision, text, proprio = inputs(config)
    state = torch.randn(3, 2, config.fusion.hidden) if memory is MemoryKind.GRU else None
    with torch.no_grad():
        out = ensemble(vision, text, proprio, state)
        assert out["action"].shape == (3, 2, 3, 2) and out["log_var"].shape == (3, 2, 3, 2)
        for index, member in enumerate(members):
            alone = member.eval()(vision, text, proprio, None if state is None else state[index])
            for key, value in alone.items():
                torch.testing.assert_close(out[key][index], value, rtol=1e-4, atol=1e-5)
    assert ("state" in out) == (memory is MemoryKind.GRU)
    attends = (FusionKind.CROSS_ATTENTION, FusionKind.TRANSFORMER, FusionKind.POINTER)
    assert ("attention" in out) == (fusion in attends)
    assert ("target_logits" in out) == (fusion is FusionKind.POINTER)


@pytest.mark.parametrize(("fusion", "memory"), COMBOS)
def test_gradients_reach_every_member_through_the_batched_pass(tiny_config, fusion, memory):
    config, _, ensemble = ensemble_of(tiny_config, fusion, memory)
    ensemble.train()
    vision, text, proprio = inputs(config)
    state = torch.randn(3, 2, config.fusion.hidden) if memory is MemoryKind.GRU else None
    out = ensemble(vision, text, proprio, state)
    out["action"].square().sum().backward()
    for name, param in ensemble.named_parameters():
        assert param.grad is not None, name
        per_member = param.grad.flatten(1).abs().sum(1)
        assert torch.all(per_member > 0), name


def test_error_model_reads_the_members_summary_and_predicts_a_positive_error(tiny_config):
    config, _, ensemble = ensemble_of(tiny_config, FusionKind.CONCAT, MemoryKind.NONE)
    vision, text, proprio = inputs(config)
    out = ensemble(vision, text, proprio)
    batch = out["action"].shape[1]
    draws = out["action"].transpose(0, 1)  # (B, members, K, A)
    features = error_features(draws, out["features"].transpose(0, 1))
    steps, channels = config.chunk.size, len(config.action_names)
    assert features.shape == (batch, steps + 2 * steps * channels + config.fusion.hidden)
    model = ErrorModel(features.shape[1], steps)
    predicted = model(features)
    assert predicted.shape == (batch, steps) and torch.all(predicted > 0)
    with torch.no_grad():  # however far it extrapolates, never more than the worst error
        model.net[-1].bias.fill_(100.0)
        torch.testing.assert_close(model(features), torch.full_like(predicted, WORST_CASE_ERROR))
    predicted.sum().backward()  # the summary is differentiable down to the members
    assert all(p.grad is not None for p in model.parameters())
    assert next(ensemble.parameters()).grad is not None


def test_eval_is_deterministic_and_mc_sampling_is_not(tiny_config):
    config, _, ensemble = ensemble_of(
        tiny_config, FusionKind.CONCAT, MemoryKind.NONE, **{"uncertainty.mc_samples": 4}
    )
    vision, text, proprio = inputs(config)
    with torch.no_grad():
        first, second = (ensemble(vision, text, proprio)["action"] for _ in range(2))
        torch.testing.assert_close(first, second)
        with mc_dropout(ensemble, True):
            sampled = ensemble(vision, text, proprio, samples=4)["action"]
            again = ensemble(vision, text, proprio, samples=4)["action"]
        assert sampled.shape == (3, 8, 3, 2)
        assert not torch.allclose(sampled, again)
        per_input = sampled.view(3, 2, 4, 3, 2)
        assert per_input.std(dim=2).mean() > 0  # the samples of one input differ
        assert not any(m.training for m in ensemble.modules())  # dropout back to eval


def test_mc_samples_reuse_one_encoder_pass(tiny_config):
    config, _, ensemble = ensemble_of(
        tiny_config, FusionKind.CONCAT, MemoryKind.NONE, **{"uncertainty.mc_samples": 4}
    )
    seen = []
    ensemble.stacked.vision.register_forward_hook(
        lambda module, args, out: seen.append(out.shape[-3])
    )
    vision, text, proprio = inputs(config)
    with torch.no_grad(), mc_dropout(ensemble, True):
        ensemble(vision, text, proprio, samples=8)
    assert seen == [2]  # the trunk saw the batch once, not 8 times


def test_memory_state_changes_what_comes_out(tiny_config):
    config, members, _ = ensemble_of(tiny_config, FusionKind.CONCAT, MemoryKind.GRU)
    vision, text, proprio = inputs(config)
    member = members[0].eval()
    with torch.no_grad():
        first = member(vision, text, proprio)
        second = member(vision, text, proprio, first["state"])
        fresh = member(vision, text, proprio)
    assert not torch.allclose(first["action"], second["action"])
    torch.testing.assert_close(first["action"], fresh["action"])


def test_stacked_parameters_are_saved_with_a_member_dimension(tiny_config):
    _, members, ensemble = ensemble_of(tiny_config, FusionKind.CONCAT, MemoryKind.NONE)
    state = ensemble.state_dict()
    weight = state["stacked.mean.weight"]
    assert weight.shape[0] == 3
    torch.testing.assert_close(weight[1], members[1].mean.weight)
    params = {k.removeprefix("stacked."): v[1] for k, v in state.items()}
    vision, text, proprio = inputs(ensemble_of(tiny_config, FusionKind.CONCAT, MemoryKind.NONE)[0])
    with torch.no_grad():
        one = functional_call(ensemble.stacked, params, (vision, text, proprio))
        torch.testing.assert_close(
            one["action"], members[1].eval()(vision, text, proprio)["action"]
        )
