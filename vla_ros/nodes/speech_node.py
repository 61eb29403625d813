"""speech_node: audio -> text on /voice_command, on the device (pocketsphinx, no download).

Audio comes from a WAV file (`wav`), the default microphone (sounddevice/PortAudio) or
audio_common_msgs/AudioData on `audio_topic` (16 kHz mono S16LE). The voice command node stays
the one parser of commands and stop words: this node only says what it heard, and says "stop"
the moment a stop word is heard (see vla_ros.speech.pipeline), with what it heard and why on
/diagnostics.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import numpy as np
from rclpy.node import Node
from std_msgs.msg import String

from vla_ros.logic.health import FaultLog, Level
from vla_ros.logic.params import ParamSpec, ParamType
from vla_ros.ros import qos
from vla_ros.ros.diagnostics import DiagnosticsReporter
from vla_ros.ros.params import ParameterSet
from vla_ros.ros.runner import run_node
from vla_ros.speech.audio import FRAME_SAMPLES, FRAME_SECONDS, AudioError, Framer, pcm16, read_wav
from vla_ros.speech.grammar import GrammarError, checkpoint_vocabulary
from vla_ros.speech.pipeline import SpeechConfig, SpeechPipeline
from vla_ros.speech.policy import Decision, PolicyConfig, Verdict
from vla_ros.speech.vad import VadConfig

NAME = "speech_node"
SOURCES = ("auto", "wav", "microphone", "topic")
PARAMS = (
    ParamSpec("source", ParamType.STRING, "Audio source; auto: wav if set, else the microphone",
              choices=SOURCES, read_only=True),
    ParamSpec("wav", ParamType.STRING,
              "WAV file (16 kHz, 16-bit) played once in real time; setting it plays another"),
    ParamSpec("wav_delay", ParamType.DOUBLE, "Seconds to wait before playing the WAV file",
              0.0, 60.0, read_only=True),
    ParamSpec("audio_topic", ParamType.STRING, "audio_common_msgs/AudioData topic (source topic)",
              read_only=True),
    ParamSpec("microphone", ParamType.STRING, "sounddevice input device; empty: the default",
              read_only=True),
    ParamSpec("checkpoint", ParamType.STRING,
              "Checkpoint whose training vocabulary the grammar holds (folder or shipped name)"),
    ParamSpec("min_confidence", ParamType.DOUBLE,
              "Lowest posterior of a command's colour and object words to believe it", 0.0, 1.0),
    ParamSpec("stop_max_duration", ParamType.DOUBLE,
              "Seconds: an unsure utterance this short is taken as a stop", 0.0, 10.0),
    ParamSpec("stop_confirm_frames", ParamType.INTEGER,
              "10 ms frames a stop word stays heard before it is a stop", 1, 100),
    ParamSpec("kws_threshold", ParamType.DOUBLE,
              "pocketsphinx keyword-spotting threshold beside the grammar (0: off)", 0.0, 1.0),
    ParamSpec("free_text", ParamType.BOOL,
              "Decode unsure utterances with the general language model too"),
    ParamSpec("free_text_confidence", ParamType.DOUBLE,
              "Lowest word posterior of free text to publish it", 0.0, 1.0),
    ParamSpec("vad_start_db", ParamType.DOUBLE, "dB above the noise floor that start speech",
              1.0, 60.0),
    ParamSpec("vad_end_db", ParamType.DOUBLE, "dB above the noise floor that still are speech",
              0.5, 60.0),
    ParamSpec("vad_hangover", ParamType.DOUBLE, "Seconds of quiet that end an utterance",
              0.05, 5.0),
)  # fmt: skip


def _validate(values: dict[str, Any]) -> None:
    if values["vad_end_db"] > values["vad_start_db"]:
        raise ValueError("vad_end_db must be <= vad_start_db")


def speech_config(values: dict[str, Any]) -> SpeechConfig:
    return SpeechConfig(
        vad=VadConfig(
            start_db=values["vad_start_db"],
            end_db=values["vad_end_db"],
            hangover_frames=max(1, round(values["vad_hangover"] / FRAME_SECONDS)),
        ),
        policy=PolicyConfig(
            min_confidence=values["min_confidence"],
            stop_max_duration=values["stop_max_duration"],
            free_text_confidence=values["free_text_confidence"],
        ),
        stop_confirm_frames=values["stop_confirm_frames"],
        kws_threshold=values["kws_threshold"],
        free_text=values["free_text"],
    )


class SpeechNode(Node):
    def __init__(self, **node_options: Any) -> None:
        super().__init__(NAME, **node_options)
        self.params = ParameterSet(self, PARAMS, NAME, _validate, self._on_change)
        self.diagnostics = DiagnosticsReporter(self)
        self.faults = FaultLog()
        self.publisher = self.create_publisher(String, "voice_command", qos.COMMANDS)
        self.heard = 0
        self._frames: queue.Queue[np.ndarray] = queue.Queue(maxsize=1000)  # 10 s of audio
        self._stop = threading.Event()
        self._rebuild = threading.Event()
        self._framer = Framer()
        self._microphone = None
        self._lock = threading.Lock()
        self._playing = 0  # which WAV file plays (the last one set)
        self._no_audio: str | None = None  # why there is no audio, while there is none
        self.pipeline: SpeechPipeline | None = None
        self.diagnostics.report(Level.STALE, "loading the recogniser")
        self._worker = threading.Thread(target=self._process, name="speech", daemon=True)
        self._worker.start()
        self._start_source()

    # -- audio sources: each pushes 10 ms frames into the queue --------------------------------
    def _start_source(self) -> None:
        source, wav = self.params["source"], self.params["wav"]
        if source == "auto":
            source = "wav" if wav else "microphone"
        try:
            if source == "wav":
                if wav:
                    self._play_file(wav, self.params["wav_delay"])
            elif source == "microphone":
                self._open_microphone()
            else:
                self._subscribe_audio()
        except (AudioError, RuntimeError) as error:
            self._no_audio = f"no audio: {error}"
            self._fault(self._no_audio, Level.ERROR)

    def _play_file(self, path: str, delay: float) -> None:
        try:
            samples = read_wav(path)
        except AudioError as error:
            self._no_audio = f"cannot play: {error}"
            self._fault(self._no_audio, Level.ERROR)
            return
        self._no_audio = None
        with self._lock:
            self._playing += 1
            turn = self._playing
        threading.Thread(target=self._play, args=(path, samples, delay, turn), daemon=True).start()

    def _play(self, path: str, samples: np.ndarray, delay: float, turn: int) -> None:
        """The file in real time, then a second of silence so its last utterance ends; a file
        set later takes over."""
        self._stop.wait(delay)
        tail = np.zeros(int(1.0 / FRAME_SECONDS) * FRAME_SAMPLES, np.int16)
        audio = np.concatenate([samples, tail])
        self.get_logger().info(f"playing {path}")
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(audio), FRAME_SAMPLES)):
            due = start + index * FRAME_SECONDS
            if self._stop.wait(max(0.0, due - time.monotonic())) or turn != self._playing:
                return
            self._push(audio[offset : offset + FRAME_SAMPLES])

    def _open_microphone(self) -> None:
        try:
            import sounddevice
        except (ImportError, OSError) as error:
            raise RuntimeError(
                f"no microphone support ({error}): pip install sounddevice and apt-get install "
                "libportaudio2, or give a WAV file (wav:=...) or an audio topic (source:=topic)"
            ) from None
        try:
            self._microphone = sounddevice.InputStream(
                samplerate=16000,
                channels=1,
                dtype="int16",
                blocksize=FRAME_SAMPLES,
                device=self.params["microphone"] or None,
                callback=lambda data, *_: self._push_block(data[:, 0].copy()),
            )
            self._microphone.start()
        except Exception as error:  # PortAudio reports every device problem its own way
            raise RuntimeError(f"cannot open the microphone: {error}") from None

    def _subscribe_audio(self) -> None:
        try:
            from audio_common_msgs.msg import AudioData
        except ImportError:
            raise RuntimeError(
                "audio_common_msgs is not installed (apt install ros-$ROS_DISTRO-audio-common-msgs)"
            ) from None
        self.create_subscription(AudioData, self.params["audio_topic"], self._on_audio, qos.SENSOR)

    def _on_audio(self, msg: Any) -> None:
        try:
            self._push_block(pcm16(bytes(msg.data)))
        except AudioError as error:
            self._fault(f"refused audio: {error}", Level.WARN)

    def _push_block(self, block: np.ndarray) -> None:
        for frame in self._framer.push(block):
            self._push(frame)

    def _push(self, frame: np.ndarray) -> None:
        try:
            self._frames.put_nowait(frame)
        except queue.Full:
            self._fault("recogniser too slow: audio dropped", Level.WARN)

    # -- recognition ---------------------------------------------------------------------------
    def _build(self) -> None:
        try:
            vocabulary = checkpoint_vocabulary(self.params["checkpoint"])
            self.pipeline = SpeechPipeline(vocabulary, speech_config(self.params.values))
        except (GrammarError, RuntimeError, ValueError) as error:
            self._fault(f"no recogniser: {error}", Level.ERROR)
            return
        if self.pipeline.dropped:
            self.get_logger().warning(f"not in the dictionary, left out: {self.pipeline.dropped}")
        self.get_logger().info(f"listening for:\n{self.pipeline.grammar}")
        if self._no_audio:
            self.diagnostics.report(Level.ERROR, self._no_audio)
        else:
            self.diagnostics.report(Level.OK, "listening", {"utterances": self.heard})

    def _on_change(self, values: dict[str, Any], changed: set[str]) -> None:
        if "wav" in changed and values["wav"]:
            self._play_file(values["wav"], 0.0)
        if changed - {"wav"}:
            self._rebuild.set()

    def _process(self) -> None:
        self._build()
        while not self._stop.is_set():
            try:
                frame = self._frames.get(timeout=0.1)
            except queue.Empty:
                continue
            if self._rebuild.is_set():
                self._rebuild.clear()
                self._build()
            if self.pipeline is None:
                continue
            for event in self.pipeline.process(frame):
                self._publish(event.decision)

    def _publish(self, decision: Decision) -> None:
        self.heard += 1
        values = {
            "heard": decision.heard,
            "confidence": decision.confidence,
            "verdict": decision.verdict.value,
            "reason": decision.reason,
            "utterances": self.heard,
        }
        if decision.verdict is Verdict.IGNORED:
            self.get_logger().info(decision.reason)
            self.diagnostics.report(Level.OK, decision.reason, values)
            return
        self.publisher.publish(String(data=decision.text))
        self.get_logger().info(f"{decision.text!r}: {decision.reason}")
        level = Level.WARN if decision.verdict is Verdict.STOP else Level.OK
        self.diagnostics.report(level, f"{decision.verdict.value}: {decision.reason}", values)

    def _fault(self, reason: str, level: Level) -> None:
        if self.faults.record(reason):
            log = self.get_logger().error if level is Level.ERROR else self.get_logger().warning
            log(reason)
        self.diagnostics.report(level, reason, {"faults": self.faults.total})

    def before_shutdown(self) -> None:
        self._stop.set()
        if self._microphone is not None:
            self._microphone.close()

    def destroy_node(self) -> None:
        self.before_shutdown()
        self._worker.join(timeout=2.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(SpeechNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
