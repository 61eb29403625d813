"""Audio as the recogniser wants it: 16 kHz mono signed 16-bit samples, in fixed frames.

Every way a WAV file or a block of audio can be unusable raises `AudioError` with the reason, so
the node can log it once and report it instead of crashing.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
FRAME_SECONDS = 0.01  # the recogniser's own frame rate (100 frames per second)
FRAME_SAMPLES = int(SAMPLE_RATE * FRAME_SECONDS)


class AudioError(ValueError):
    """The audio cannot be used; the message says why."""


def read_wav(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The samples of a 16-bit PCM WAV file at `sample_rate` as int16, channels averaged."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
            data = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise AudioError(f"no such WAV file: {path}") from None
    except Exception as error:  # a corrupt header surfaces as wave.Error, EOFError, RuntimeError...
        reason = str(error) or type(error).__name__
        raise AudioError(f"{path} is not a readable WAV file ({reason})") from None
    if width != 2:
        raise AudioError(f"{path}: {8 * width}-bit samples, need 16-bit PCM")
    if rate != sample_rate:
        raise AudioError(
            f"{path}: sample rate {rate} Hz, need {sample_rate} Hz "
            f"(convert it: sox in.wav -r {sample_rate} -c 1 -b 16 out.wav)"
        )
    samples = np.frombuffer(data[: len(data) // (2 * channels) * 2 * channels], "<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if samples.size == 0:
        raise AudioError(f"{path} holds no audio")
    return samples.astype(np.int16)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    path = Path(path)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return path


def pcm16(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Raw little-endian 16-bit mono PCM as samples; AudioError for a torn sample."""
    if len(data) % 2:
        raise AudioError(f"audio block of {len(data)} bytes is not whole 16-bit samples")
    return np.frombuffer(bytes(data), "<i2").astype(np.int16)


def frames(samples: np.ndarray, frame_samples: int = FRAME_SAMPLES) -> Iterator[np.ndarray]:
    """Consecutive frames; the last is padded with silence."""
    for start in range(0, len(samples), frame_samples):
        frame = samples[start : start + frame_samples]
        if len(frame) < frame_samples:
            frame = np.concatenate([frame, np.zeros(frame_samples - len(frame), np.int16)])
        yield frame


class Framer:
    """Blocks of any length in (microphone callbacks, audio messages), whole frames out."""

    def __init__(self, frame_samples: int = FRAME_SAMPLES) -> None:
        self.frame_samples = frame_samples
        self._pending = np.zeros(0, np.int16)

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        data = np.concatenate([self._pending, np.asarray(block, np.int16)])
        whole = len(data) // self.frame_samples * self.frame_samples
        self._pending = data[whole:]
        return list(data[:whole].reshape(-1, self.frame_samples))
