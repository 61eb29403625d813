"""The command grammar, built from the instructions a checkpoint was trained on.

A policy understands the verbs and the targets (colour and object) of its training
instructions, so the recogniser listens for exactly those: "<verb phrase> the <target>" with
every verb and every taught target, plus the stop words alone or in a short sentence. Only the
taught colour-object pairs are targets: a policy taught "red box" and "green ball" was never
taught "red ball", and a grammar holding it too let "red box" be heard as "red ball". A grammar
makes the recogniser pick the nearest sentence, which is why the stop words are in it (without
them a lone "stop" was decoded as "go") and why its confidence is checked before a command is
believed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vla_ros.logic.commands import STOP_WORDS
from vla_ros.paths import package_data_dir

CONFIG_FILE = "config.json"
DEFAULT_CHECKPOINT = "mobile"
# Words that come with a stop in a short sentence ("please stop", "stop the robot", "halt now").
STOP_BEFORE = ("please", "robot")
STOP_AFTER = ("now", "please", "the robot", "right now", "right there")
_SPLIT = re.compile(r"^(?P<verb>.+?) the (?P<object>[a-z ]+)$")


class GrammarError(ValueError):
    """No grammar can be built; the message says why."""


@dataclass(frozen=True)
class Vocabulary:
    """What a policy was taught: verb phrases, targets ("<colour> <object>", as taught: not
    every colour with every object), and whole sentences that do not split into those. Every
    verb goes with every target."""

    verbs: tuple[str, ...]
    targets: tuple[str, ...]
    sentences: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for target in self.targets:
            if len(target.split()) != 2:
                raise GrammarError(f"a target is a colour and an object, not {target!r}")

    @property
    def colours(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.split()[0] for t in self.targets))

    @property
    def objects(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.split()[1] for t in self.targets))

    @classmethod
    def from_instructions(cls, instructions: Iterable[str]) -> Vocabulary:
        verbs: dict[str, None] = {}
        targets: dict[str, None] = {}
        sentences: dict[str, None] = {}
        for instruction in instructions:
            text = " ".join(re.findall(r"[a-z']+", instruction.lower()))
            match = _SPLIT.match(text)
            if match and len(match["object"].split()) == 2:
                verbs[match["verb"]] = None
                targets[match["object"]] = None
            elif text:
                sentences[text] = None
        if not (verbs or sentences):
            raise GrammarError("the checkpoint lists no training instructions to listen for")
        return cls(tuple(verbs), tuple(targets), tuple(sentences))

    def without(self, unknown: Callable[[str], bool]) -> tuple[Vocabulary, list[str]]:
        """This vocabulary without phrases holding a word `unknown` says the recogniser cannot
        pronounce, and the phrases dropped."""

        def keep(phrases: Sequence[str]) -> tuple[str, ...]:
            return tuple(p for p in phrases if not any(unknown(w) for w in p.split()))

        kept = Vocabulary(keep(self.verbs), keep(self.targets), keep(self.sentences))
        dropped = [
            p
            for p in (*self.verbs, *self.targets, *self.sentences)
            if any(unknown(w) for w in p.split())
        ]
        if not ((kept.verbs and kept.targets) or kept.sentences):
            raise GrammarError(f"the recogniser's dictionary lacks the words of {dropped}")
        return kept, dropped

    def words(self) -> set[str]:
        phrases = (*self.verbs, *self.targets, *self.sentences)
        return {w for p in (*phrases, *STOP_BEFORE, *STOP_AFTER, *STOP_WORDS) for w in p.split()}


def _alternatives(phrases: Iterable[str]) -> str:
    return "(" + " | ".join(phrases) + ")"


def jsgf(vocabulary: Vocabulary, prefixes: bool = False) -> str:
    """The JSGF grammar: any taught command, or a stop word with a few words around it.

    With `prefixes`, the start of a command is a sentence too ("go to the", "go to the red"): a
    recogniser listening to a command still being spoken then hears its start, not the nearest
    stop word.
    """
    rules = []
    commands = []
    if vocabulary.verbs and vocabulary.targets:
        commands.append("<verb> [the [<target> | <colour>]]" if prefixes else "<verb> the <target>")
        rules += [
            f"<verb> = {_alternatives(vocabulary.verbs)};",
            f"<target> = {_alternatives(vocabulary.targets)};",
        ]
        if prefixes:
            rules.append(f"<colour> = {_alternatives(vocabulary.colours)};")
    commands += vocabulary.sentences
    stop = f"[{_alternatives(STOP_BEFORE)}] <stopword>+ [{_alternatives(STOP_AFTER)}]"
    return "\n".join(
        [
            "#JSGF V1.0;",
            "grammar vla_ros;",
            "public <utterance> = <command> | <stop>;",
            f"<command> = {_alternatives(commands)};",
            f"<stop> = {stop};",
            f"<stopword> = {_alternatives(STOP_WORDS)};",
            *rules,
            "",
        ]
    )


def target_words(text: str, vocabulary: Vocabulary) -> set[str]:
    """The words of a command that say which object is meant (its colour and object)."""
    match = _SPLIT.match(text)
    return (
        set(match["object"].split()) if match and match["object"] in vocabulary.targets else set()
    )


def is_command(text: str, vocabulary: Vocabulary) -> bool:
    """Whether `text` is a whole command of the grammar (not a fragment of one)."""
    if text in vocabulary.sentences:
        return True
    match = _SPLIT.match(text)
    return (
        bool(match) and match["verb"] in vocabulary.verbs and match["object"] in vocabulary.targets
    )


def checkpoint_folder(checkpoint: str) -> Path:
    """A checkpoint folder, or a checkpoint shipped in the package by name ("" = the default).

    Never the hub: the speech node must start without a network.
    """
    name = checkpoint or DEFAULT_CHECKPOINT
    local = Path(name).expanduser()
    if (local / CONFIG_FILE).is_file():
        return local
    shipped = package_data_dir("checkpoints", name)
    if (shipped / CONFIG_FILE).is_file():
        return shipped
    raise GrammarError(
        f"no checkpoint {name!r}: give a folder holding {CONFIG_FILE} or a shipped name"
    )


def checkpoint_vocabulary(checkpoint: str) -> Vocabulary:
    """The vocabulary of a checkpoint's training instructions (its config.json only, no weights)."""
    path = checkpoint_folder(checkpoint) / CONFIG_FILE
    try:
        instructions = json.loads(path.read_text()).get("training_instructions") or []
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise GrammarError(f"cannot read {path}: {error}") from None
    return Vocabulary.from_instructions(str(i) for i in instructions)
