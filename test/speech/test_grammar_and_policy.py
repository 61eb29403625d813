"""The grammar built from a checkpoint's training instructions, and the stop policy."""

import json

import pytest

from vla_ros.speech.grammar import (
    GrammarError,
    Vocabulary,
    checkpoint_vocabulary,
    is_command,
    jsgf,
    target_words,
)
from vla_ros.speech.policy import PolicyConfig, Verdict, decide, spotted_stop


def test_the_shipped_checkpoints_give_their_own_verbs_colours_and_objects():
    mobile = checkpoint_vocabulary("")
    assert set(mobile.verbs) == {"go to", "drive to", "move to", "head towards", "find"}
    assert set(mobile.colours) == {"red", "green", "blue", "yellow"}
    assert set(mobile.objects) == {"cube", "box", "ball", "cylinder", "capsule"}
    assert set(mobile.targets) == {
        "red cube", "red box", "green ball", "blue cylinder", "yellow capsule"
    }  # fmt: skip
    arm = checkpoint_vocabulary("arm")
    assert "reach for" in arm.verbs and "put your hand on" in arm.verbs
    assert "go to" not in arm.verbs


def test_a_checkpoint_folder_is_read_without_its_weights(tmp_path):
    instructions = ["fetch the pink mug", "wave hello"]
    (tmp_path / "config.json").write_text(json.dumps({"training_instructions": instructions}))
    vocabulary = checkpoint_vocabulary(str(tmp_path))
    assert vocabulary.verbs == ("fetch",) and vocabulary.targets == ("pink mug",)
    assert vocabulary.colours == ("pink",) and vocabulary.objects == ("mug",)
    assert vocabulary.sentences == ("wave hello",)
    assert is_command("wave hello", vocabulary) and is_command("fetch the pink mug", vocabulary)


@pytest.mark.parametrize(
    ("instructions", "reason"), [([], "no training instructions"), (None, "no checkpoint")]
)
def test_a_checkpoint_without_instructions_gives_no_grammar(tmp_path, instructions, reason):
    if instructions is not None:
        (tmp_path / "config.json").write_text(json.dumps({"training_instructions": instructions}))
    with pytest.raises(GrammarError, match=reason):
        checkpoint_vocabulary(str(tmp_path / ("" if instructions is not None else "missing")))


def test_the_grammar_holds_commands_and_stop_words():
    text = jsgf(checkpoint_vocabulary(""))
    assert "<verb> the <target>" in text
    assert "(stop | halt | freeze)" in text
    assert "[the" not in text
    assert "<verb> [the [<target> | <colour>]]" in jsgf(checkpoint_vocabulary(""), prefixes=True)


def test_only_the_taught_colour_object_pairs_are_targets():
    # Taught "red box" and "green ball", never "red ball": a grammar with every colour and every
    # object let a spoken "red box" be heard as "red ball".
    vocabulary = Vocabulary.from_instructions(["go to the red box", "find the green ball"])
    text = jsgf(vocabulary)
    assert "<target> = (red box | green ball);" in text
    assert "red ball" not in text and "<colour>" not in text
    assert is_command("find the red box", vocabulary)  # every verb with every target
    assert not is_command("go to the red ball", vocabulary)
    assert target_words("go to the red ball", vocabulary) == set()
    with pytest.raises(GrammarError, match="colour and an object"):
        Vocabulary(("go to",), ("box",))


def test_only_whole_commands_are_commands_and_their_targets_are_colour_and_object():
    vocabulary = checkpoint_vocabulary("")
    assert is_command("head towards the yellow capsule", vocabulary)
    assert not is_command("go to the red", vocabulary)
    assert not is_command("go to the purple cube", vocabulary)
    assert target_words("go to the red cube", vocabulary) == {"red", "cube"}


def test_words_the_recogniser_cannot_say_are_left_out():
    vocabulary = Vocabulary(("go to", "zoomify"), ("red cube",))
    kept, dropped = vocabulary.without(lambda word: word == "zoomify")
    assert kept.verbs == ("go to",) and dropped == ["zoomify"]
    with pytest.raises(GrammarError, match="lacks the words"):
        vocabulary.without(lambda word: word == "red")


POLICY = PolicyConfig(min_confidence=0.5, stop_max_duration=0.9)


@pytest.mark.parametrize("heard", ["stop", "please halt now", "freeze the robot"])
def test_a_stop_word_heard_is_a_stop_whatever_the_confidence(heard):
    decision = decide(heard, 0.01, False, 2.0, POLICY)
    assert decision.verdict is Verdict.STOP and decision.text == "stop"
    assert heard in decision.reason


def test_a_confident_whole_command_is_published_as_heard():
    decision = decide("go to the red cube", 0.9, True, 1.2, POLICY)
    assert (decision.verdict, decision.text) == (Verdict.COMMAND, "go to the red cube")


def test_an_unsure_short_utterance_is_taken_as_a_stop():
    decision = decide("go", 0.2, False, 0.4, POLICY)
    assert decision.verdict is Verdict.STOP and decision.text == "stop"
    assert "may have been a stop" in decision.reason


def test_an_unsure_long_utterance_is_ignored_not_obeyed():
    decision = decide("go to the red cube", 0.3, True, 1.5, POLICY)
    assert decision.verdict is Verdict.IGNORED and decision.text == ""
    assert "not understood" in decision.reason


def test_sound_in_which_no_word_fits_is_noise_not_a_stop():
    decision = decide("", 0.0, False, 0.5, POLICY)
    assert decision.verdict is Verdict.IGNORED and "no words" in decision.reason


def test_free_text_is_published_only_when_confident():
    heard = ("turn around slowly", 0.97)
    assert decide("find the", 0.2, False, 1.5, POLICY, heard).text == "turn around slowly"
    unsure = ("turn around slowly", 0.5)
    assert decide("find the", 0.2, False, 1.5, POLICY, unsure).verdict is Verdict.IGNORED
    assert decide("find the", 0.2, False, 1.5, POLICY, ("halt", 0.1)).verdict is Verdict.STOP


def test_the_spotter_stop_says_what_it_heard():
    decision = spotted_stop("halt")
    assert decision.text == "stop" and "spotter heard 'halt'" in decision.reason


@pytest.mark.parametrize("bad", [{"min_confidence": 1.5}, {"stop_max_duration": -1.0}])
def test_inconsistent_policy_settings_are_refused(bad):
    with pytest.raises(ValueError):
        PolicyConfig(**bad)
