"""What an utterance becomes: a command, a stop, or nothing, and why.

Stops fail safe. Anything with a stop word in it is a stop. A command is believed only when the
recogniser heard a whole command of the grammar with every word's posterior at least
`min_confidence`; a grammar always returns its nearest sentence, so without that check a cough
could become "go to the red cube". An utterance that is not believed and might have been a stop
(short like a stop word, or a single word heard) is taken as a stop: stopping for nothing costs
a "resume", moving on a misheard stop can cost more. Sound in which no word of the grammar fits
at all (the grammar holds the stop words too) is noise: a door, a change in the background.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vla_ros.logic.commands import STOP, parse_command


class Verdict(enum.Enum):
    COMMAND = "command"
    STOP = "stop"
    IGNORED = "ignored"


@dataclass(frozen=True)
class PolicyConfig:
    min_confidence: float = 0.8  # lowest posterior of a believed command's colour and object
    stop_max_duration: float = 0.9  # seconds: an unsure utterance this short may be a stop
    free_text_confidence: float = 0.95  # lowest word posterior of believed free text

    def __post_init__(self) -> None:
        for name in ("min_confidence", "free_text_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.stop_max_duration < 0:
            raise ValueError("stop_max_duration must be >= 0")


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    text: str  # what goes on /voice_command ("" for IGNORED)
    heard: str  # what the recogniser heard
    confidence: float
    reason: str


def has_stop_word(text: str) -> bool:
    return bool(text) and parse_command(text).is_stop


def spotted_stop(word: str) -> Decision:
    """The keyword spotter heard a stop word, before the utterance ended."""
    return Decision(Verdict.STOP, STOP, word, 1.0, f"keyword spotter heard '{word}'")


def decide(
    heard: str,
    confidence: float,
    whole_command: bool,
    duration: float,
    config: PolicyConfig,
    free_text: tuple[str, float] | None = None,
) -> Decision:
    """The decision for one finished utterance.

    `heard`/`confidence`: the grammar recogniser's text and lowest word posterior;
    `whole_command`: whether that text is a complete command of the grammar; `duration`: seconds
    of speech; `free_text`: the general language model's text and confidence, if it ran.
    """
    if has_stop_word(heard):
        return Decision(Verdict.STOP, STOP, heard, confidence, f"heard '{heard}'")
    if whole_command and confidence >= config.min_confidence:
        return Decision(
            Verdict.COMMAND, heard, heard, confidence, f"heard '{heard}' ({confidence:.2f})"
        )
    if free_text is not None:
        text, free_confidence = free_text
        if has_stop_word(text):
            return Decision(Verdict.STOP, STOP, text, free_confidence, f"free text '{text}'")
        if text and free_confidence >= config.free_text_confidence:
            return Decision(Verdict.COMMAND, text, text, free_confidence, f"free text '{text}'")
    if not heard:
        # No word of the grammar fits at all (it holds the stop words): noise, not speech.
        return Decision(Verdict.IGNORED, "", heard, 0.0, f"{duration:.2f} s of sound, no words")
    unsure = f"unsure of '{heard}' ({confidence:.2f}"
    unsure += ")" if whole_command else ", not a whole command)"
    if duration <= config.stop_max_duration or len(heard.split()) == 1:
        return Decision(
            Verdict.STOP,
            STOP,
            heard,
            confidence,
            f"{unsure} in {duration:.2f} s of speech: it may have been a stop",
        )
    return Decision(Verdict.IGNORED, "", heard, confidence, f"not understood: {unsure}")
