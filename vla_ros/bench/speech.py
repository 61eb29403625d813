"""How well spoken commands and stops come through, on the corpus of vla_ros.bench.speech_corpus.

The recognition pipeline (the speech node's, vla_ros.speech.pipeline) hears each noise level's
files one after another as one continuous stream, frame by frame, as a microphone would feed it.
A decision's latency is the audio from the end of the word (stops) or of the speech (commands)
to the end of the frame that produced it, plus the compute time that frame took: what the node
adds before it publishes on /voice_command. The publication itself (one local DDS hop) is not in
it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_ros.bench.speech_corpus import Utterance, load
from vla_ros.speech.audio import frames, read_wav
from vla_ros.speech.grammar import checkpoint_vocabulary
from vla_ros.speech.pipeline import SpeechConfig, SpeechPipeline
from vla_ros.speech.policy import Verdict

STOP_WITHIN_S = 0.3


@dataclass
class Tally:
    commands: int = 0
    right: int = 0
    wrong: int = 0
    false_stops: int = 0
    stops: int = 0
    caught: int = 0
    caught_in_time: int = 0
    stop_latency: list[float] = field(default_factory=list)
    command_latency: list[float] = field(default_factory=list)
    audio_s: float = 0.0
    compute_s: float = 0.0
    misses: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        def pct(n: int, d: int) -> float:
            return round(100.0 * n / d, 1) if d else float("nan")

        def ms(values: list[float], q: float) -> float:
            return round(1000 * float(np.percentile(values, q)), 1) if values else float("nan")

        return {
            "commands": self.commands,
            "right_target_pct": pct(self.right, self.commands),
            "wrong_target_pct": pct(self.wrong, self.commands),
            "false_stop_pct": pct(self.false_stops, self.commands),
            "stops": self.stops,
            "stop_recall_pct": pct(self.caught, self.stops),
            "stop_within_300ms_pct": pct(self.caught_in_time, self.stops),
            "stop_latency_p50_ms": ms(self.stop_latency, 50),
            "stop_latency_p95_ms": ms(self.stop_latency, 95),
            "stop_latency_max_ms": ms(self.stop_latency, 100),
            "command_latency_p50_ms": ms(self.command_latency, 50),
            "command_latency_p95_ms": ms(self.command_latency, 95),
            "real_time_factor": round(self.compute_s / self.audio_s, 3) if self.audio_s else 0.0,
            "misses": self.misses,
        }


def _target(text: str) -> str:
    words = text.split()
    return " ".join(words[-2:]) if len(words) >= 2 else text


def score(utterance: Utterance, events: list, tally: Tally) -> None:
    """Count one utterance's decisions (events timed from the start of its file)."""
    stops = [e for e in events if e.decision.verdict is Verdict.STOP]
    commands = [e for e in events if e.decision.verdict is Verdict.COMMAND]
    heard = "; ".join(f"{e.decision.verdict.value}: {e.decision.reason}" for e in events)
    if utterance.kind == "stop":
        tally.stops += 1
        if stops:
            tally.caught += 1
            first = stops[0]
            latency = first.audio_time - utterance.stop_end + first.compute_time
            tally.stop_latency.append(latency)
            tally.caught_in_time += latency <= STOP_WITHIN_S
        if not stops or commands:
            tally.misses.append(f"{utterance.file} {utterance.text!r}: {heard or 'nothing'}")
        return
    tally.commands += 1
    tally.false_stops += bool(stops)
    if commands:
        first = commands[0]
        tally.right += _target(first.decision.text) == utterance.target
        tally.wrong += _target(first.decision.text) != utterance.target
        tally.command_latency.append(first.audio_time - utterance.speech_end + first.compute_time)
    if stops or not commands or _target(commands[0].decision.text) != utterance.target:
        tally.misses.append(f"{utterance.file} {utterance.text!r}: {heard or 'nothing'}")


def evaluate(
    folder: Path,
    checkpoint: str = "",
    config: SpeechConfig | None = None,
    levels: tuple[str, ...] = (),
) -> dict[str, dict[str, object]]:
    """The summary per noise level ("clean", "20 dB", ...) of the corpus in `folder` (only the
    `levels` named, if any)."""
    corpus = load(folder)
    vocabulary = checkpoint_vocabulary(checkpoint)
    by_level: dict[str, list[Utterance]] = defaultdict(list)
    for utterance in corpus:
        by_level["clean" if utterance.snr_db is None else f"{utterance.snr_db:g} dB"].append(
            utterance
        )
    results = {}
    for level, utterances in by_level.items():
        if levels and level not in levels:
            continue
        pipeline = SpeechPipeline(vocabulary, config)
        tally = Tally()
        for utterance in utterances:
            start = pipeline.audio_time
            events = []
            began = time.perf_counter()
            samples = read_wav(folder / utterance.file)
            for frame in frames(samples):
                for event in pipeline.process(frame):
                    events.append(
                        type(event)(event.decision, event.audio_time - start, event.compute_time)
                    )
            tally.compute_s += time.perf_counter() - began
            tally.audio_s += len(samples) / 16000
            score(utterance, events, tally)
        results[level] = tally.summary()
    return results
