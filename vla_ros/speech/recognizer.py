"""pocketsphinx behind small classes: a keyword spotter for stop words, a grammar recogniser for
commands (with the general language model for free text), and forced alignment for the corpus.

pocketsphinx 5 ships its US-English acoustic model, dictionary and language model inside the
wheel: nothing is downloaded. It is imported when a recogniser is built, not before.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_ros.logic.commands import STOP_WORDS
from vla_ros.speech.audio import FRAME_SECONDS, SAMPLE_RATE


def _decoder(**settings: object) -> Any:  # a pocketsphinx.Decoder
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise RuntimeError(
            "pocketsphinx is not installed: pip install -r requirements.txt"
        ) from None
    # Dither: stretches of exact digital zeros (a muted input, padded files) have no log
    # spectrum, and the decoder's running cepstral mean goes astray on them.
    return Decoder(loglevel="FATAL", samprate=SAMPLE_RATE, dither=True, seed=1, **settings)


def add_lot_vowel_variants(decoder: Any, words: Iterable[str]) -> list[str]:
    """Teach the decoder British "lot" vowels: "box", "stop" said /bɒks/, /stɒp/.

    The model's dictionary is American: the vowel of "box" is AA. Many speakers say it rounded,
    which the American phone set writes AO, the vowel of "ball": without the variant a British
    "red box" was heard as "red ball" (7 of 100 commands at 20 dB SNR on the espeak-ng corpus,
    3 with it). Returns the words that got a variant.
    """
    added = []
    for word in sorted(set(words)):
        phones = decoder.lookup_word(word)
        if phones and "AA" in phones.split():
            variant = " ".join("AO" if p == "AA" else p for p in phones.split())
            decoder.add_word(f"{word}(lot)", variant, False)
            added.append(word)
    return added


def _pcm(frame: np.ndarray) -> bytes:
    return np.asarray(frame, dtype="<i2").tobytes()


@dataclass(frozen=True)
class Hypothesis:
    text: str  # "" when nothing was recognised
    confidence: float  # 0..1: the lowest posterior of a word in it (0 when empty)
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the utterance
    end: float
    posterior: float  # 0..1 (1 when the decoder made no lattice)


def _words(decoder: Any) -> tuple[Word, ...]:
    return tuple(
        Word(
            seg.word.split("(")[0],  # "to(3)": the third pronunciation of "to"
            seg.start_frame * FRAME_SECONDS,
            (seg.end_frame + 1) * FRAME_SECONDS,
            float(seg.prob),
        )
        for seg in decoder.seg() or ()
        if not seg.word.startswith(("<", "[", "("))  # silence, fillers, sentence marks, (NULL)
    )


def _hypothesis(decoder: Any) -> Hypothesis:
    hyp = decoder.hyp()
    if hyp is None or not hyp.hypstr:
        return Hypothesis("", 0.0)
    words = _words(decoder)
    return Hypothesis(hyp.hypstr, min((w.posterior for w in words), default=0.0), words)


class Dictionary:
    """Which words the acoustic model's dictionary can pronounce."""

    def __init__(self) -> None:
        self._decoder = _decoder()

    def __contains__(self, word: str) -> bool:
        return self._decoder.lookup_word(word) is not None


class StopSpotter:
    """Listens for stop words on every frame of speech, before the utterance ends.

    A live decoder follows the utterance with the grammar in which the start of a command is a
    sentence too (`jsgf(..., prefixes=True)`), so "find the..." is heard as the start of a
    command and not as the stop word nearest to it. A stop word that stays in its running
    hypothesis for `confirm_frames` frames is a stop. pocketsphinx's own keyword spotting
    (`kws_threshold` > 0) can fire too; alone it trades missed stops against false ones badly
    (measured: docs/speech.md), beside the grammar it catches stops the grammar misses.
    """

    def __init__(
        self,
        prefix_jsgf: str,
        confirm_frames: int,
        kws_threshold: float = 0.0,
        words: Iterable[str] = (),
    ) -> None:
        self._decoder = _decoder(lm=None)
        add_lot_vowel_variants(self._decoder, words)
        self._decoder.add_jsgf_string("prefixes", prefix_jsgf)
        self._decoder.activate_search("prefixes")
        self.confirm_frames = confirm_frames
        self._kws = None
        if kws_threshold > 0:
            with tempfile.NamedTemporaryFile("w", suffix=".kws", delete=False) as keyfile:
                keyfile.writelines(f"{w} /{kws_threshold:.3g}/\n" for w in STOP_WORDS)
            try:
                self._kws = _decoder(kws=keyfile.name)
            finally:
                os.unlink(keyfile.name)
            self._kws.start_utt()
        self._listening = False
        self._seen = 0
        self._fired = False

    def start(self, frames: Iterable[np.ndarray]) -> str | None:
        """A new utterance, beginning with `frames`; a stop word heard in them, if any."""
        if self._listening:
            self._decoder.end_utt()
        self._decoder.start_utt()
        self._listening, self._seen, self._fired = True, 0, False
        heard = None
        for frame in frames:
            heard = heard or self._listen(frame)
        return heard

    def process(self, frame: np.ndarray, in_speech: bool) -> str | None:
        """The stop word heard by the end of this frame, once per utterance."""
        heard = None
        if self._kws is not None:
            self._kws.process_raw(_pcm(frame), False, False)
            hyp = self._kws.hyp()
            if hyp is not None and hyp.hypstr:
                self._kws.end_utt()
                self._kws.start_utt()
                heard = hyp.hypstr.split()[0]
        if in_speech and self._listening:
            heard = self._listen(frame) or heard
        return heard

    def end(self) -> None:
        if self._listening:
            self._decoder.end_utt()
            self._listening = False

    def _listen(self, frame: np.ndarray) -> str | None:
        self._decoder.process_raw(_pcm(frame), False, False)
        hyp = self._decoder.hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        stop = next((w for w in words if w in STOP_WORDS), None)
        self._seen = self._seen + 1 if stop else 0
        if stop and self._seen >= self.confirm_frames and not self._fired:
            self._fired = True
            return stop
        return None


class CommandRecognizer:
    """Decodes one whole utterance at a time with a JSGF grammar.

    Whole, not frame by frame: the cepstral mean then comes from the utterance itself instead of
    a running estimate, which a live decoder gets wrong at the start of a stream. With
    `free_text` the general language model can decode the last utterance again.
    """

    def __init__(
        self,
        jsgf: str,
        free_text: bool = False,
        confidence: bool = True,
        words: Iterable[str] = (),
        beams: Mapping[str, float] | None = None,
    ) -> None:
        # Word posteriors (the confidence) come from the lattice that `bestpath` builds.
        self._decoder = _decoder(lm=None, bestpath=confidence, **(beams or {}))
        add_lot_vowel_variants(self._decoder, words)
        self._decoder.add_jsgf_string("grammar", jsgf)
        self._decoder.activate_search("grammar")
        self._free = _decoder(bestpath=True) if free_text else None
        self._last = np.zeros(0, np.int16)

    def decode(self, samples: np.ndarray) -> Hypothesis:
        self._last = samples
        return _decode(self._decoder, samples)

    def free_text(self) -> Hypothesis | None:
        """The last utterance decoded with the general language model (None without one)."""
        if self._free is None or not len(self._last):
            return None
        return _decode(self._free, self._last)


def _decode(decoder: Any, samples: np.ndarray) -> Hypothesis:
    decoder.start_utt()
    decoder.process_raw(_pcm(samples), False, True)
    decoder.end_utt()
    return _hypothesis(decoder)


# Beams wide enough that the aligner's one path is not pruned away (fast speech, 205 words per
# minute, lost "halt right now" and "stop stop stop" with the default beams).
WIDE_BEAMS = {"beam": 1e-80, "wbeam": 1e-60, "pbeam": 1e-80}


def align(samples: np.ndarray, text: str) -> tuple[Word, ...]:
    """Where each word of `text` lies in `samples` (a forced alignment: the text is known).

    The default beams first, then wide ones where those lost the path.
    """
    words = text.lower().split()
    grammar = f"#JSGF V1.0;\ngrammar align;\npublic <s> = {' '.join(words)};\n"
    heard = ""
    for beams in (None, WIDE_BEAMS):
        hyp = CommandRecognizer(grammar, confidence=False, beams=beams).decode(samples)
        if hyp.text.split() == words:
            return hyp.words
        heard = hyp.text
    raise ValueError(f"could not align {text!r} (heard {heard!r})")
