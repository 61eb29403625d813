"""Spoken or typed commands: normalisation, stop words and refusal of text that is not a command."""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

STOP_WORDS = ("stop", "halt", "freeze")
STOP = "stop"
DEFAULT_MAX_CHARS = 500

_STOP_PATTERN = re.compile(r"\b(?:" + "|".join(STOP_WORDS) + r")\b", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


class CommandKind(enum.Enum):
    INSTRUCTION = "instruction"
    STOP = "stop"


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    text: str

    @property
    def is_stop(self) -> bool:
        return self.kind is CommandKind.STOP


class InvalidCommand(ValueError):
    """The text cannot be taken as a command; the message says why."""


def parse_command(raw: str | bytes, max_chars: int = DEFAULT_MAX_CHARS) -> Command:
    """A command from raw text: trimmed, whitespace folded, lower-cased, length-capped.

    A stop word anywhere in the sentence ("please STOP now", "halt!") makes it a stop command whose
    text is exactly `stop`: a robot that hears "stop" in "don't stop" stops, which is the safe
    mistake. Raises InvalidCommand for invalid UTF-8, empty text or text over `max_chars`.
    """
    # Bytes and characters can both be 4x apart; refuse huge input before any work on it.
    if len(raw) > 4 * max_chars:
        raise InvalidCommand(f"command of {len(raw)} bytes exceeds {max_chars} characters")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidCommand(f"command is not valid UTF-8 ({error.reason})") from None
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    text = _WHITESPACE.sub(" ", text).strip().lower()
    if not text:
        raise InvalidCommand("empty command")
    if len(text) > max_chars:
        raise InvalidCommand(f"command of {len(text)} characters exceeds {max_chars}")
    if _STOP_PATTERN.search(text):
        return Command(CommandKind.STOP, STOP)
    return Command(CommandKind.INSTRUCTION, text)
