"""The recognition pipeline on real recordings, with the real recogniser (pocketsphinx)."""

import json
from pathlib import Path

import numpy as np
import pytest

from vla_ros.speech.audio import frames, read_wav
from vla_ros.speech.grammar import checkpoint_vocabulary
from vla_ros.speech.pipeline import SpeechPipeline
from vla_ros.speech.policy import Verdict

DATA = Path(__file__).resolve().parents[1] / "data" / "speech"
MANIFEST = {entry["file"]: entry for entry in json.loads((DATA / "manifest.json").read_text())}


@pytest.fixture(scope="module")
def pipeline():
    return SpeechPipeline(checkpoint_vocabulary(""))


def hear(pipeline, samples):
    """Every event, with the audio time relative to the start of `samples`."""
    start = pipeline.audio_time
    return [
        (e.audio_time - start, e.decision) for f in frames(samples) for e in pipeline.process(f)
    ]


def padded(name, seconds=1.0):
    """The recording, then quiet: the voice activity detector needs to hear the speech end."""
    samples = read_wav(DATA / name)
    quiet = np.random.default_rng(0).normal(0, 20, int(16000 * seconds)).astype(np.int16)
    return np.concatenate([samples, quiet])


def test_a_spoken_command_comes_out_as_its_text(pipeline):
    heard = hear(pipeline, padded("go_to_the_red_cube.wav"))
    assert [(d.verdict, d.text) for _, d in heard] == [(Verdict.COMMAND, "go to the red cube")]
    t, decision = heard[0]
    assert t > MANIFEST["go_to_the_red_cube.wav"]["speech_end"]  # decided once it was said
    assert 0 < decision.confidence <= 1 and "heard 'go to the red cube'" in decision.reason


def test_a_spoken_stop_is_a_stop_before_the_utterance_ends(pipeline):
    heard = hear(pipeline, padded("stop.wav"))
    stops = [(t, d) for t, d in heard if d.verdict is Verdict.STOP]
    assert stops and all(d.verdict is Verdict.STOP for _, d in heard)
    first_t, first = stops[0]
    assert first.text == "stop" and "spotter heard" in first.reason  # any stop word stops
    # the spotter fires while the person still speaks or just after: before the end of the
    # utterance, which needs the quiet that follows the word
    utterance_end = heard[-1][0]
    assert len(heard) == 2 and first_t < utterance_end


def test_quiet_and_noise_alone_are_never_a_command(pipeline):
    rng = np.random.default_rng(3)
    quiet = rng.normal(0, 30, 16000 * 3).astype(np.int16)
    assert hear(pipeline, quiet) == []


def test_a_cough_like_burst_is_no_command(pipeline):
    rng = np.random.default_rng(4)
    burst = np.concatenate(
        [rng.normal(0, 30, 16000), rng.normal(0, 6000, 4000), rng.normal(0, 30, 16000)]
    ).astype(np.int16)
    assert not [d for _, d in hear(pipeline, burst) if d.verdict is Verdict.COMMAND]


def test_words_with_the_lot_vowel_get_their_british_pronunciation():
    from vla_ros.speech.recognizer import _decoder, add_lot_vowel_variants

    decoder = _decoder(lm=None)
    assert add_lot_vowel_variants(decoder, {"box", "ball", "stop", "red"}) == ["box", "stop"]
    assert decoder.lookup_word("box(lot)") == "B AO K S"


def test_free_text_decodes_the_last_utterance_again_with_the_language_model():
    from vla_ros.speech.grammar import jsgf
    from vla_ros.speech.recognizer import CommandRecognizer

    grammar = jsgf(checkpoint_vocabulary(""))
    samples = read_wav(DATA / "go_to_the_red_cube.wav")
    recogniser = CommandRecognizer(grammar, free_text=True)
    assert recogniser.free_text() is None  # nothing heard yet
    assert recogniser.decode(samples).text == "go to the red cube"
    free = recogniser.free_text()
    assert free is not None and free.text and 0 <= free.confidence <= 1
    assert CommandRecognizer(grammar).free_text() is None


def test_the_aligner_finds_the_words_of_fast_speech_its_default_beams_lose():
    from vla_ros.speech.recognizer import align

    words = align(read_wav(DATA / "halt_right_now_fast_clean.wav"), "halt right now")
    assert [w.text for w in words] == ["halt", "right", "now"]
    ends = [w.end for w in words]
    assert ends == sorted(ends) and 0.3 < ends[0] < ends[-1] <= 1.56
    with pytest.raises(ValueError, match="could not align 'stop now'"):
        align(np.zeros(8000, np.int16), "stop now")
