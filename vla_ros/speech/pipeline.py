"""Audio frames in, decisions out: voice activity, the stop spotter and the command recogniser.

Every 10 ms frame of speech goes to the stop spotter as it arrives, so a stop word is acted on as
soon as it is heard, before the person has finished the sentence (pocketsphinx's keyword
spotting, when switched on, hears every frame, speech or not). Voice activity cuts the stream
into utterances; at the end of each, the grammar recogniser decodes it whole and the policy
(vla_ros.speech.policy) decides what it was. A stop heard by the spotter stands for the rest of
its utterance: the command recogniser cannot undo it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from vla_ros.logic.commands import STOP
from vla_ros.speech.audio import FRAME_SAMPLES, FRAME_SECONDS
from vla_ros.speech.grammar import Vocabulary, is_command, jsgf, target_words
from vla_ros.speech.policy import Decision, PolicyConfig, Verdict, decide, spotted_stop
from vla_ros.speech.vad import VadConfig, VadEvent, VoiceActivity


@dataclass(frozen=True)
class SpeechConfig:
    vad: VadConfig = field(default_factory=VadConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    stop_confirm_frames: int = 8  # frames a stop word stays heard before it is a stop
    # Standard deviation (int16 units, about -64 dBFS) of the noise floor added to every frame.
    # The acoustic model never heard exact digital silence (a muted input, synthesised or padded
    # files): on it the decoder's running cepstral mean goes astray, and the spotter heard a
    # stop word in 12 of 100 clean corpus commands ("stop" in the "f" of "find"). A real
    # microphone's own floor is louder than this, so there it changes nothing.
    noise_floor: float = 20.0
    kws_threshold: float = 0.0  # pocketsphinx keyword spotting beside the grammar (0: off)
    free_text: bool = False


@dataclass(frozen=True)
class Event:
    decision: Decision
    audio_time: float  # seconds of audio processed when it was decided (end of its frame)
    compute_time: float  # seconds spent deciding it after its frame arrived


class SpeechPipeline:
    def __init__(self, vocabulary: Vocabulary, config: SpeechConfig | None = None) -> None:
        from vla_ros.speech.recognizer import CommandRecognizer, Dictionary, StopSpotter

        self.config = config or SpeechConfig()
        dictionary = Dictionary()
        self.vocabulary, self.dropped = vocabulary.without(lambda w: w not in dictionary)
        self.grammar = jsgf(self.vocabulary)
        self.spotter = StopSpotter(
            jsgf(self.vocabulary, prefixes=True),
            self.config.stop_confirm_frames,
            self.config.kws_threshold,
            words=self.vocabulary.words(),
        )
        self.recognizer = CommandRecognizer(
            self.grammar, free_text=self.config.free_text, words=self.vocabulary.words()
        )
        self.vad = VoiceActivity(self.config.vad)
        self._rng = np.random.default_rng(0)
        self.frames = 0
        self._utterance: list[np.ndarray] = []
        self._stopped = False  # the spotter heard a stop in the current utterance

    @property
    def audio_time(self) -> float:
        return self.frames * FRAME_SECONDS

    def process(self, frame: np.ndarray) -> list[Event]:
        started = time.perf_counter()
        self.frames += 1
        events = []
        if self.config.noise_floor > 0:
            noisy = frame + self._rng.normal(0.0, self.config.noise_floor, len(frame))
            frame = np.clip(np.round(noisy), -32768, 32767).astype(np.int16)
        state = self.vad.update(frame)
        if state is VadEvent.START:
            self._utterance = list(self.vad.preroll)
            word = self.spotter.start(self._utterance)
        else:
            word = self.spotter.process(frame, in_speech=state is VadEvent.SPEECH)
        if word is not None:
            self._stopped = self.vad.in_speech or state is VadEvent.END
            events.append(self._event(spotted_stop(word), started))
        if state is VadEvent.SPEECH:
            self._utterance.append(frame)
        elif state is VadEvent.END:
            self.spotter.end()
            self._utterance.append(frame)
            events.append(self._event(self._decide(), started))
        return events

    def _event(self, decision: Decision, started: float) -> Event:
        return Event(decision, self.audio_time, time.perf_counter() - started)

    def _decide(self) -> Decision:
        audio = np.concatenate(self._utterance)
        self._utterance = []
        stopped, self._stopped = self._stopped, False
        hyp = self.recognizer.decode(audio)
        whole = is_command(hyp.text, self.vocabulary)
        # A command is as sure as its colour and object: which verb was heard does not change the
        # target, and the verbs ("go to", "move to") are where the recogniser hesitates most.
        targets = target_words(hyp.text, self.vocabulary) if whole else set()
        confidence = min(
            (w.posterior for w in hyp.words if w.text in targets), default=hyp.confidence
        )
        # Speech without the frames kept before its start and the quiet ones that ended it.
        vad = self.config.vad
        frames = len(audio) / FRAME_SAMPLES - vad.preroll_frames - vad.hangover_frames
        duration = max(frames, 0) * FRAME_SECONDS
        free = None
        believed = whole and confidence >= self.config.policy.min_confidence
        if self.config.free_text and not believed:
            text = self.recognizer.free_text()
            free = (text.text, text.confidence) if text is not None else None
        decision = decide(hyp.text, confidence, whole, duration, self.config.policy, free)
        if stopped and decision.verdict is not Verdict.STOP:
            # The spotter's stop already went out; a command in the same breath does not undo it.
            decision = Decision(
                Verdict.STOP,
                STOP,
                hyp.text,
                hyp.confidence,
                f"keyword spotter heard a stop in this utterance (recogniser: {decision.reason})",
            )
        return decision
