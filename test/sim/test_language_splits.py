"""Evaluation splits of the language: each says one thing training never shows, every command
of each names the object it means (or, for the parser, what it cannot tell), and training data
never holds what a split holds out."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vla_ros.learn.collect import collect
from vla_ros.learn.dataset import iter_episodes
from vla_ros.learn.episodes import episode_seed, sample_instruction, sample_task
from vla_ros.learn.evaluate import language_splits
from vla_ros.sim.tasks import (
    COLOUR_WORDS,
    HELD_OUT_COLOURS,
    PHRASINGS,
    REFUSAL_SPLITS,
    SHAPE_WORDS,
    SPATIAL_WORDS,
    TRAIN_NOUNS,
    TRAIN_PLACE_NOUNS,
    TRAIN_SPATIAL_WORDS,
    Split,
    TaskKind,
)

WORD = re.compile(r"[a-z]+")
HELD_OUT_COLOUR_WORDS = {word for words in HELD_OUT_COLOURS.values() for word in words}
NEGATIONS = {"not", "except", "instead", "rather"}
TRAIN_WORDS_OF_TEMPLATES = {
    word
    for phrasings in PHRASINGS.values()
    for template in phrasings.train
    for word in WORD.findall(template.replace("{object}", "").replace("{place}", ""))
}
TRAIN_NOUN_WORDS = {w for words in TRAIN_NOUNS.values() for w in words}
# What the parser says of each refusal split's commands.
REFUSAL_REASONS = {
    Split.ABSENT: "there is no",
    Split.AMBIGUOUS: "is ambiguous",
    Split.NONSENSE: "names no object",
}
KINDS = {
    "mobile": (TaskKind.GO_TO,),
    "humanoid": (TaskKind.REACH,),
    "arm": (TaskKind.REACH, TaskKind.PICK, TaskKind.PLACE),
}


@pytest.mark.parametrize("objects", ["fixed", "compositional"])
@pytest.mark.parametrize("scene", sorted(KINDS))
def test_every_split_s_commands_name_the_object_they_mean(worlds, scene, objects):
    world = worlds(scene, objects)
    for split in language_splits(world.spec):
        world.unseen_combinations = split is Split.COMBINATIONS
        for index in range(12):
            seed = episode_seed(7, index)
            kind = KINDS[scene][index % len(KINDS[scene])]
            world.reset(seed)
            sampled = sample_task(world, seed, split, kind=kind)
            status = world.set_instruction(sampled.instruction)
            if split in REFUSAL_SPLITS:
                assert sampled.target is None and status.target is None, sampled.instruction
                assert REFUSAL_REASONS[split] in status.message, (sampled.instruction, status)
                continue
            assert status.target == sampled.target.name, (split, sampled.instruction)
            assert world.tracker.task.kind is kind
            if kind is TaskKind.PLACE:
                assert world.tracker.task.place == sampled.place, sampled.instruction


@pytest.mark.parametrize("objects", ["fixed", "compositional"])
def test_training_commands_never_use_what_the_splits_hold_out(worlds, objects):
    world = worlds("arm", objects)
    training_words = set()
    for index in range(600):
        seed = episode_seed(0, index)
        world.reset(seed)
        kind = KINDS["arm"][index % 3]
        training_words |= set(WORD.findall(sample_instruction(world, seed, kind=kind)))
    assert not training_words & HELD_OUT_COLOUR_WORDS
    held_out_nouns = {w for words in SHAPE_WORDS.values() for w in words} - TRAIN_NOUN_WORDS
    assert not training_words & held_out_nouns
    assert not training_words & NEGATIONS
    assert not training_words & set(SPATIAL_WORDS)
    # Every word of a training command is a training template's, colour, noun or place noun.
    allowed = (
        TRAIN_WORDS_OF_TEMPLATES
        | set(COLOUR_WORDS)
        | TRAIN_NOUN_WORDS
        | {w for words in TRAIN_PLACE_NOUNS.values() for w in words}
        | {"on", "in"}
    )
    assert training_words <= allowed, training_words - allowed


def test_demonstrations_that_name_by_attribute_or_place_resolve_and_keep_to_training_words(
    worlds,
):
    world = worlds("arm", "compositional")
    held_out_spatial = set(SPATIAL_WORDS) - set(TRAIN_SPATIAL_WORDS)
    contrasted = 0
    for index in range(30):
        seed = episode_seed(4, index)
        world.reset(seed)
        named = set()
        for shift in range(4):
            for split in (Split.ATTRIBUTE, Split.SPATIAL):
                sampled = sample_task(world, seed, split, shift, training=True)
                assert world.set_instruction(sampled.instruction).target == sampled.target.name
                assert not set(WORD.findall(sampled.instruction)) & held_out_spatial
                if split is Split.SPATIAL:
                    named.add(sampled.target)
        # the shifts of one picture ask for "the left cube" and "the right cube": only the word
        # of place tells those demonstrations apart
        contrasted += len(named) > 1
    assert contrasted >= 25


def test_collection_takes_turns_through_its_splits_by_placement(tmp_path):
    from vla_ros.sim.scenes import scene_with_objects

    splits = (Split.TRAIN, Split.ATTRIBUTE, Split.SPATIAL)
    collect(
        scene_with_objects("arm", "compositional"),
        tmp_path,
        18,
        seed=9,
        targets_per_placement=2,
        split=splits,
        tasks=(TaskKind.REACH,),
        max_steps=1,
        progress=False,
    )
    instructions = [episode.instruction for episode in iter_episodes(tmp_path)]
    attribute_only = 0
    for index, instruction in enumerate(instructions):
        words = set(WORD.findall(instruction))
        split = splits[(index // 2) % 3]
        described = len(words & set(COLOUR_WORDS)) + len(words & TRAIN_NOUN_WORDS)
        assert bool(words & set(TRAIN_SPATIAL_WORDS)) == (split is Split.SPATIAL), instruction
        if split is Split.TRAIN:
            assert described == 2, instruction
        attribute_only += split is Split.ATTRIBUTE and described == 1
    assert attribute_only  # "the ball", "the red one", where no other object is one


def test_each_split_holds_out_what_it_says(worlds):
    world = worlds("mobile")
    colours = set(COLOUR_WORDS)
    for index in range(40):
        seed = episode_seed(3, index)
        world.reset(seed)

        def words(split, seed=seed):
            return WORD.findall(sample_instruction(world, seed, split))

        assert set(words(Split.COLOURS)) & HELD_OUT_COLOUR_WORDS
        assert not set(words(Split.COLOURS)) & colours
        assert not set(words(Split.NOUNS)) & TRAIN_NOUN_WORDS
        both = set(words(Split.COLOURS_AND_NOUNS))
        assert both & HELD_OUT_COLOUR_WORDS and not both & TRAIN_NOUN_WORDS
        assert set(words(Split.DISTRACTOR)) & NEGATIONS
        assert len(set(words(Split.DISTRACTOR)) & colours) == 2
        attribute = set(words(Split.ATTRIBUTE))
        assert len(attribute & colours) + len(attribute & TRAIN_NOUN_WORDS) == 1
        assert set(words(Split.SPATIAL)) & set(SPATIAL_WORDS)
    templates = {t for p in PHRASINGS.values() for t in p.train}
    assert not templates & {t for p in PHRASINGS.values() for t in p.structures}


def expert_on_the_arm(report: Path, *args: str) -> tuple[str, dict]:
    """`vla-ros eval --scene arm --expert ARGS --json REPORT`: (its stdout, the report)."""
    vla_ros = str(Path(sys.executable).parent / "vla-ros")
    command = [vla_ros, "eval", "--scene", "arm", "--expert", *args, "--json", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads(report.read_text())


def test_the_language_report_and_a_commands_file_drive_the_expert(tmp_path):
    report = tmp_path / "report.json"
    stdout, written = expert_on_the_arm(report, "--episodes", "1", "--language-report")
    splits = written["splits"]
    # Unseen combinations need compositional objects: the fixed scene has none to hold out.
    assert list(splits) == [split.value for split in Split if split is not Split.COMBINATIONS]
    assert all(s["success_rate"] == 1.0 for s in splits.values())
    assert "| spatial | 1 | 100% |" in stdout
    commands = tmp_path / "commands.txt"
    commands.write_text("touch the nearest one, not the red cube\n\nreach the blue can\n")
    stdout, written = expert_on_the_arm(report, "--episodes", "3", "--commands-file", str(commands))
    assert "given commands" in stdout and "train phrasings" not in stdout
    assert written["split"] is None
    episodes = written["episode_results"]
    assert [e["instruction"] for e in episodes] == [
        "touch the nearest one, not the red cube",
        "reach the blue can",
        "touch the nearest one, not the red cube",
    ]
    assert episodes[1]["target"] == "blue cylinder"
    assert all(e["target"] != "red cube" for e in episodes)
    assert np.mean([e["state"] == "succeeded" for e in episodes]) == 1.0


def test_unseen_combinations_are_asked_for_on_compositional_scenes_only(tmp_path):
    report = tmp_path / "report.json"
    stdout, written = expert_on_the_arm(
        report, "--episodes", "2", "--objects", "compositional", "--split", "combinations"
    )
    assert "compositional objects" in stdout
    assert written["objects"] == "compositional" and written["split"] == "combinations"
    assert written["success_rate"] == 1.0
    vla_ros = str(Path(sys.executable).parent / "vla-ros")
    refused = subprocess.run(
        [vla_ros, "eval", "--scene", "arm", "--expert", "--split", "combinations"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2
    assert "--objects compositional" in refused.stderr
