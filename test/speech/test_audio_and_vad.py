"""Audio framing, WAV checks and voice activity detection, on synthetic signals."""

import wave

import numpy as np
import pytest

from vla_ros.speech.audio import (
    FRAME_SAMPLES,
    AudioError,
    Framer,
    frames,
    pcm16,
    read_wav,
    write_wav,
)
from vla_ros.speech.vad import VadConfig, VadEvent, VoiceActivity

RATE = 16000


def tone(seconds, amplitude, rng):
    t = np.arange(int(seconds * RATE)) / RATE
    voiced = amplitude * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 4 * t))
    return voiced + rng.normal(0, amplitude * 0.05, len(t))


def noise(seconds, level, rng):
    return rng.normal(0, level, int(seconds * RATE))


def int16(signal):
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


def test_a_wav_file_reads_back_as_16khz_mono(tmp_path):
    samples = int16(np.linspace(-1000, 1000, 1600))
    assert np.array_equal(read_wav(write_wav(tmp_path / "a.wav", samples)), samples)


def wav_file(path, channels, width, data):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(RATE)
        wav.writeframes(data)
    return path


def test_stereo_is_averaged_to_mono(tmp_path):
    data = np.array([100, 300] * 160, "<i2").tobytes()
    assert set(read_wav(wav_file(tmp_path / "stereo.wav", 2, 2, data))) == {200}


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage"), "not a readable WAV"),
        (lambda p: write_wav(p, np.zeros(100, np.int16), sample_rate=44100), "44100 Hz"),
        (lambda p: write_wav(p, np.zeros(0, np.int16)), "no audio"),
        (lambda p: None, "no such WAV"),
    ],
)
def test_unusable_wav_files_are_refused_with_the_reason(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=reason):
        read_wav(path)


def test_eight_bit_wav_is_refused(tmp_path):
    with pytest.raises(AudioError, match="8-bit"):
        read_wav(wav_file(tmp_path / "8bit.wav", 1, 1, bytes(160)))


def test_raw_blocks_of_any_size_become_whole_frames():
    framer = Framer()
    out = framer.push(np.arange(100, dtype=np.int16)) + framer.push(np.arange(300, dtype=np.int16))
    assert [len(f) for f in out] == [FRAME_SAMPLES, FRAME_SAMPLES]
    assert np.array_equal(np.concatenate(out)[:100], np.arange(100))
    assert len(framer.push(np.zeros(0, np.int16))) == 0


def test_a_torn_sample_is_refused():
    with pytest.raises(AudioError, match="whole 16-bit samples"):
        pcm16(b"\x00\x01\x02")


def test_the_last_frame_is_padded_with_silence():
    out = list(frames(np.ones(FRAME_SAMPLES + 10, np.int16)))
    assert len(out) == 2 and out[1][:10].all() and not out[1][10:].any()


def events(vad, signal):
    return [vad.update(f) for f in frames(int16(signal))]


@pytest.mark.parametrize("noise_level", [0.0, 30.0, 300.0])
def test_speech_between_quiet_stretches_is_one_utterance(noise_level):
    rng = np.random.default_rng(0)
    speech = tone(0.8, 3000, rng)
    signal = np.concatenate([noise(1.0, noise_level, rng), speech, noise(1.0, noise_level, rng)])
    signal += noise(len(signal) / RATE, noise_level, rng)
    vad = VoiceActivity()
    seen = events(vad, signal)
    starts = [i for i, e in enumerate(seen) if e is VadEvent.START]
    ends = [i for i, e in enumerate(seen) if e is VadEvent.END]
    assert len(starts) == len(ends) == 1
    # starts within 60 ms of the onset at 1.0 s, ends one hangover after the speech (1.8 s)
    assert 100 <= starts[0] <= 106
    assert 180 + 25 <= ends[0] <= 180 + 35
    assert len(vad.preroll) == vad.config.preroll_frames + 1


def test_steady_noise_that_begins_is_learnt_not_taken_for_speech():
    rng = np.random.default_rng(1)
    signal = np.concatenate([noise(1.0, 10, rng), noise(4.0, 1000, rng)])
    seen = events(VoiceActivity(), signal)
    # the onset of the noise may open an utterance, but it ends within the floor's window
    assert seen.count(VadEvent.START) <= 1
    assert VadEvent.SPEECH not in seen[-150:]


def test_an_utterance_is_cut_at_max_frames():
    rng = np.random.default_rng(2)
    vad = VoiceActivity(VadConfig(max_frames=50, floor_frames=1000))
    seen = events(vad, np.concatenate([noise(0.5, 10, rng), tone(2.0, 3000, rng)]))
    assert seen.count(VadEvent.END) >= 1
    # the frames kept from before the start count towards the length
    kept = vad.config.preroll_frames + 1
    assert seen.index(VadEvent.END) - seen.index(VadEvent.START) == 50 - kept


@pytest.mark.parametrize(
    "bad",
    [{"end_db": 9.0, "start_db": 6.0}, {"start_frames": 0}, {"preroll_frames": -1}],
)
def test_inconsistent_vad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        VadConfig(**bad)
