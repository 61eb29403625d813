"""A spoken-command corpus made reproducibly: espeak-ng voices and speeds, sox noise, several SNRs.

    python -m vla_ros.bench.speech_corpus --out data/speech_corpus      (or: make speech-corpus)

Needs the Debian packages espeak-ng and sox. Every utterance is synthesised, resampled to 16 kHz
mono with sox, padded with silence (so voice activity detection sees it start and end) and mixed
with pink noise from `sox synth` (fixed seed) at each signal-to-noise ratio, measured over the
speech itself. For each spoken stop, the end of the stop word is found by aligning the clean audio
to its known text, so latency can be measured from the end of the word. `manifest.json` lists
every file with its text, kind, target, voice, speed, SNR and times.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vla_ros.speech.audio import SAMPLE_RATE, read_wav, write_wav

MANIFEST = "manifest.json"
CLEAN = None  # SNR of the noiseless copies
SNRS_DB: tuple[float | None, ...] = (CLEAN, 20.0, 10.0)
VOICES = ("en-us", "en-us+f2", "en+m5", "en-gb", "en-us+m3", "en+f3", "en-us+f4", "en+m1")
SPEEDS = (130, 155, 180, 205)  # words per minute; espeak-ng's default is 175
COMMAND_VERBS = ("go to", "drive to", "move to", "head towards", "find")
COMMAND_OBJECTS = ("red cube", "red box", "green ball", "blue cylinder", "yellow capsule")
STOP_PHRASES = (
    "stop",
    "halt",
    "freeze",
    "stop now",
    "please stop",
    "stop the robot",
    "halt right now",
    "freeze please",
    "robot stop",
    "stop stop stop",
)
# Seconds of silence (then noise) around each utterance: long enough for the voice activity
# detector to learn the noise before the speech, and to see the speech end after it.
LEAD_IN, TAIL = 2.0, 1.0


@dataclass(frozen=True)
class Utterance:
    file: str
    text: str
    kind: str  # "command" or "stop"
    target: str  # the object a command names ("" for stops)
    voice: str
    speed: int
    snr_db: float | None  # None: clean
    speech_start: float  # seconds from the start of the file
    speech_end: float
    stop_end: float | None  # end of the first stop word (stops only)


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def synthesise(
    text: str, voice: str, speed: int, folder: Path, lead_in: float = LEAD_IN, tail: float = TAIL
) -> np.ndarray:
    raw, converted = folder / "raw.wav", folder / "16k.wav"
    _run("espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text)
    # -D: no dither, so the same text gives the same samples on every run
    _run("sox", "-D", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(converted))
    speech = read_wav(converted)
    silence = np.zeros(int(lead_in * SAMPLE_RATE), np.int16)
    return np.concatenate([silence, speech, np.zeros(int(tail * SAMPLE_RATE), np.int16)])


def pink_noise(seconds: float, folder: Path) -> np.ndarray:
    """Unit-power pink noise; `sox -R` seeds its generator the same on every run."""
    path = folder / "noise.wav"
    _run(
        "sox", "-R", "-D", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(path),
        "synth", f"{seconds:.2f}", "pinknoise", "vol", "0.5",
    )  # fmt: skip
    noise = read_wav(path).astype(np.float64)
    return noise / np.sqrt(np.mean(noise**2))


def speech_span(samples: np.ndarray, threshold: int = 300) -> tuple[float, float]:
    """First and last loud sample of a clean recording, in seconds."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    return loud[0] / SAMPLE_RATE, (loud[-1] + 1) / SAMPLE_RATE


def mix(
    clean: np.ndarray, noise: np.ndarray, snr_db: float, span: tuple[float, float]
) -> np.ndarray:
    """`clean` plus `noise` scaled so the speech in `span` is `snr_db` above it."""
    start, end = (int(t * SAMPLE_RATE) for t in span)
    speech_power = np.mean(clean[start:end].astype(np.float64) ** 2)
    scale = np.sqrt(speech_power / 10 ** (snr_db / 10))
    mixed = clean.astype(np.float64) + scale * noise[: len(clean)]
    return np.clip(np.round(mixed), -32768, 32767).astype(np.int16)


def _cut(seconds: float, margin: float = -0.3) -> int:
    """The sample `margin` seconds after `seconds` (before it, by default), not before 0."""
    return max(0, int((seconds + margin) * SAMPLE_RATE))


def stop_word_end(samples: np.ndarray, text: str) -> float:
    """When the first stop word of `text` ends, from a forced alignment of the clean audio.

    Only the speech and 0.3 s around it are aligned: long digital silence throws the aligner.
    """
    from vla_ros.logic.commands import STOP_WORDS
    from vla_ros.speech.recognizer import align

    start, end = speech_span(samples)
    first = _cut(start)
    for word in align(samples[first : _cut(end, 0.3)], text):
        if word.text in STOP_WORDS:
            return first / SAMPLE_RATE + word.end
    raise ValueError(f"no stop word aligned in {text!r}")


def scripts() -> list[tuple[str, str, str]]:
    """(text, kind, target) of every utterance, each spoken once per voice/speed pairing."""
    commands = [
        (f"{verb} the {obj}", "command", obj)
        for verb, obj in itertools.product(COMMAND_VERBS, COMMAND_OBJECTS)
    ]
    return commands + [(text, "stop", "") for text in STOP_PHRASES]


def _check_tools() -> None:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install espeak-ng sox")


TEST_DATA = (("go to the red cube", "command", "red cube"), ("stop", "stop", ""))
# Fast speech the aligner lost with its default beams: clean, cut as `stop_word_end` cuts it.
ALIGN_TEST = ("halt right now", "en-us+f4", 205, "halt_right_now_fast_clean.wav")


def build_test_data(out: Path, snr_db: float = 20.0) -> list[Utterance]:
    """The few short WAVs the tests play (kept in the repository: tests need no espeak-ng)."""
    _check_tools()
    out.mkdir(parents=True, exist_ok=True)
    utterances = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        text, voice, speed, name = ALIGN_TEST
        clean = synthesise(text, voice, speed, folder)
        start, end = speech_span(clean)
        write_wav(out / name, clean[_cut(start) : _cut(end, 0.3)])
        noise = pink_noise(10.0, folder)
        for text, kind, target in TEST_DATA:
            clean = synthesise(text, "en-us", 155, folder, lead_in=0.5, tail=0.5)
            span = speech_span(clean)
            stop_end = stop_word_end(clean, text) if kind == "stop" else None
            name = f"{text.replace(' ', '_')}.wav"
            write_wav(out / name, mix(clean, noise, snr_db, span))
            utterances.append(
                Utterance(name, text, kind, target, "en-us", 155, snr_db, *span, stop_end)
            )
    (out / MANIFEST).write_text(json.dumps([asdict(u) for u in utterances], indent=1))
    return utterances


def build(
    out: Path, speakers_per_text: int = 4, speakers_per_stop: int = 8, seed: int = 0
) -> list[Utterance]:
    """The corpus; another `seed` picks other voice/speed pairings and other noise."""
    _check_tools()
    out.mkdir(parents=True, exist_ok=True)
    speakers = list(itertools.product(VOICES, SPEEDS))
    rng = np.random.default_rng(seed)
    utterances: list[Utterance] = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        noise = pink_noise(60.0, folder)
        for number, (text, kind, target) in enumerate(scripts()):
            count = speakers_per_stop if kind == "stop" else speakers_per_text
            chosen = rng.choice(len(speakers), count, replace=False)
            for voice, speed in (speakers[i] for i in chosen):
                clean = synthesise(text, voice, speed, folder)
                span = speech_span(clean)
                stop_end = stop_word_end(clean, text) if kind == "stop" else None
                offset = int(rng.integers(0, len(noise) - len(clean)))
                for snr in SNRS_DB:
                    name = f"{kind}_{number:02d}_{voice.replace('+', '-')}_{speed}"
                    name += "_clean" if snr is None else f"_snr{snr:g}"
                    samples = clean if snr is None else mix(clean, noise[offset:], snr, span)
                    write_wav(out / f"{name}.wav", samples)
                    utterances.append(
                        Utterance(
                            f"{name}.wav", text, kind, target, voice, speed, snr, *span, stop_end
                        )
                    )
    (out / MANIFEST).write_text(json.dumps([asdict(u) for u in utterances], indent=1))
    return utterances


def load(folder: Path) -> list[Utterance]:
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"no speech corpus in {folder} ({MANIFEST} missing): make it with "
            f"python -m vla_ros.bench.speech_corpus --out {folder}"
        )
    return [Utterance(**entry) for entry in json.loads(path.read_text())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/speech_corpus"))
    parser.add_argument(
        "--speakers", type=int, default=4, help="voice/speed pairings per command (default 4)"
    )
    parser.add_argument(
        "--stop-speakers", type=int, default=8, help="voice/speed pairings per stop (default 8)"
    )
    parser.add_argument("--seed", type=int, default=0, help="other pairings and noise (default 0)")
    parser.add_argument(
        "--test-data", action="store_true", help="write only the short WAVs the tests play"
    )
    args = parser.parse_args(argv)
    utterances = (
        build_test_data(args.out)
        if args.test_data
        else build(args.out, args.speakers, args.stop_speakers, args.seed)
    )
    print(f"wrote {len(utterances)} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
