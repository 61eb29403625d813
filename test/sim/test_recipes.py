"""A recipe runs end to end: its demonstrations in the wordings it names, its first moves, the
cloning, a DAgger round with the learner driving, and the checkpoint it hands back."""

import io
import re

import torch

from vla_ros.learn.dataset import iter_episodes
from vla_ros.learn.recipes import FIRST_MOVE_STEPS, REACHING, RECIPES, Recipe, run_recipe
from vla_ros.model import load_policy
from vla_ros.sim.tasks import PHRASINGS, TRAIN_SPATIAL_WORDS, Split, TaskKind

WORD = re.compile(r"[a-z]+")


def test_a_tiny_recipe_collects_its_wordings_and_first_moves_and_runs_its_dagger_round(
    tmp_path, monkeypatch
):
    tiny = Recipe(
        "arm",
        episodes=48,  # 16 placements: two objects named and one refusal each
        targets_per_placement=2,
        epochs=1,
        dagger_rounds=1,
        dagger_episodes=2,
        overrides={"uncertainty.ensemble": 1},
        objects="compositional",
        refusals=1,
        first_moves=6,
        splits=(Split.ATTRIBUTE, Split.SPATIAL),
    )
    monkeypatch.setitem(RECIPES, "tiny", tiny)
    log = io.StringIO()
    out = run_recipe("tiny", tmp_path / "checkpoint", tmp_path / "data", log=log)

    episodes = list(iter_episodes(tmp_path / "data"))
    assert len(episodes) == 48 + 6 + 2
    demonstrations, first_moves, relabelled = episodes[:48], episodes[48:54], episodes[54:]
    assert all(episode.success for episode in demonstrations)
    assert all(len(episode) <= FIRST_MOVE_STEPS for episode in first_moves)
    assert max(len(episode) for episode in demonstrations) > FIRST_MOVE_STEPS
    for batch in (demonstrations, first_moves):
        # placements take turns naming by attribute and by place; the third of each refuses
        assert [e.names_target for e in batch] == [True, True, False] * (len(batch) // 3)
        for index, episode in enumerate(batch):
            by_place = bool(set(WORD.findall(episode.instruction)) & set(TRAIN_SPATIAL_WORDS))
            assert by_place == (episode.names_target and (index // 3) % 2 == 1), episode.instruction
    assert all(episode.names_target for episode in relabelled)
    assert "DAgger round 1" in log.getvalue()
    rounds = tmp_path / "data" / "checkpoints"
    assert (rounds / "round0" / "model.safetensors").is_file()
    assert (rounds / "round1" / "model.safetensors").is_file()
    policy = load_policy(str(out))
    # the last round's checkpoint, trained on the demonstrations and the learner's episodes
    assert policy.config.training.dataset == str((tmp_path / "data").resolve())
    assert len(policy.config.training_instructions) >= 4


def test_a_picking_recipe_asks_to_pick_up_throughout_and_starts_from_the_reaching_policy(
    tmp_path, monkeypatch
):
    tiny = Recipe(
        "arm",
        episodes=16,
        targets_per_placement=2,
        epochs=1,
        dagger_rounds=1,
        dagger_episodes=2,
        overrides={**REACHING, "uncertainty.ensemble": 1},
        tasks=(TaskKind.PICK,),
        init_from="arm",
    )
    monkeypatch.setitem(RECIPES, "tiny-pick", tiny)
    run_recipe("tiny-pick", tmp_path / "checkpoint", tmp_path / "data", log=io.StringIO())

    episodes = list(iter_episodes(tmp_path / "data"))
    assert len(episodes) == 16 + 2  # demonstrations, then the learner's episodes
    wordings = [
        re.compile(re.escape(template).replace(re.escape("{object}"), ".+"))
        for template in PHRASINGS[TaskKind.PICK].train
    ]
    for episode in episodes:
        assert any(w.fullmatch(episode.instruction) for w in wordings), episode.instruction
    assert all(episode.success for episode in episodes[:16])
    # One epoch moves the weights only a little from where they started: the reaching policy's
    # first member, not a fresh initialisation.
    shipped = load_policy("arm").model.ensemble.stacked.state_dict()
    round0 = load_policy(str(tmp_path / "data" / "checkpoints" / "round0"))
    started = round0.model.ensemble.stacked.state_dict()
    for name in ("vision", "fusion"):
        keys = [key for key in started if key.startswith(name) and started[key].dim() > 2]
        assert keys, name
        for key in keys:
            similarity = torch.nn.functional.cosine_similarity(
                started[key][0].flatten(), shipped[key][0].flatten(), dim=0
            )
            assert similarity > 0.9, key
