"""Voice activity detection: frame energy against a noise floor that follows the room.

Speech starts when the energy (averaged over `smooth_frames`) stays `start_db` above the floor
for `start_frames` frames (the frames just before are kept, so the recogniser hears the word's
onset) and ends after `hangover_frames` frames below `end_db` above it. The floor is a quiet
percentile of the last `floor_frames` energies: people pause between words, so speech does not
raise it, and steady noise (a fan, a motor) does within that window, even in the middle of an
utterance. Energy is enough for one talker near the microphone; it is not a speaker detector.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VadConfig:
    start_db: float = 6.0  # above the floor: speech may have started
    end_db: float = 4.0  # below this above the floor: silence again
    start_frames: int = 4  # consecutive loud frames that make speech (40 ms)
    hangover_frames: int = 25  # quiet frames that end an utterance (250 ms)
    preroll_frames: int = 30  # frames before the start handed to the recogniser (300 ms)
    max_frames: int = 1000  # an utterance is cut after this many frames (10 s)
    smooth_frames: int = 5  # energy is averaged over 50 ms: noise flickers less than 10 ms does
    floor_frames: int = 150  # the floor: a quiet (10th percentile) energy of the last 1.5 s
    min_floor_db: float = 20.0  # no floor below this (int16 units): digital silence is not a room

    def __post_init__(self) -> None:
        if not 0 < self.end_db <= self.start_db:
            raise ValueError("need 0 < end_db <= start_db")
        if min(self.start_frames, self.hangover_frames, self.max_frames) < 1:
            raise ValueError("start_frames, hangover_frames and max_frames must be >= 1")
        if self.preroll_frames < 0:
            raise ValueError("preroll_frames must be >= 0")
        if min(self.floor_frames, self.smooth_frames) < 1:
            raise ValueError("floor_frames and smooth_frames must be >= 1")


class VadEvent(enum.Enum):
    SILENCE = "silence"
    START = "start"  # speech began: the pre-roll and this frame belong to the utterance
    SPEECH = "speech"  # a frame inside the utterance
    END = "end"  # the utterance ended with the hangover (this frame is its last)


def frame_power(frame: np.ndarray) -> float:
    """Mean power of a frame (int16 units squared)."""
    return float(np.mean(np.square(frame, dtype=np.float64))) if len(frame) else 0.0


def frame_db(frame: np.ndarray) -> float:
    return 10.0 * math.log10(frame_power(frame) + 1.0)


class VoiceActivity:
    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        self._energies: deque[float] = deque(maxlen=self.config.floor_frames)
        self._powers: deque[float] = deque(maxlen=self.config.smooth_frames)
        self.in_speech = False
        self._loud = 0
        self._quiet = 0
        self._length = 0
        self._recent: deque[np.ndarray] = deque(maxlen=self.config.preroll_frames + 1)
        self.preroll: list[np.ndarray] = []  # filled at START: frames before and including it

    def update(self, frame: np.ndarray) -> VadEvent:
        c = self.config
        self._powers.append(frame_power(frame))
        energy = 10.0 * math.log10(sum(self._powers) / len(self._powers) + 1.0)
        self._energies.append(energy)
        above = energy - self.floor_db
        if not self.in_speech:
            self._recent.append(frame)
            self._loud = self._loud + 1 if above >= c.start_db else 0
            if self._loud >= c.start_frames:
                self.in_speech = True
                self._quiet = 0
                self._length = len(self._recent)
                self.preroll = list(self._recent)
                self._recent.clear()
                return VadEvent.START
            return VadEvent.SILENCE
        self._length += 1
        self._quiet = self._quiet + 1 if above < c.end_db else 0
        if self._quiet >= c.hangover_frames or self._length >= c.max_frames:
            self.in_speech = False
            self._loud = 0
            return VadEvent.END
        return VadEvent.SPEECH

    @property
    def floor_db(self) -> float:
        quiet = float(np.percentile(self._energies, 10)) if self._energies else 0.0
        return max(quiet, self.config.min_floor_db)

    @property
    def quiet_frames(self) -> int:
        """Quiet frames at the end of the current utterance (how long ago speech stopped)."""
        return self._quiet if self.in_speech else 0
