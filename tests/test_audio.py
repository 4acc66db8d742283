"""Audio loading: resampling, downmix, channel choice, segments, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from featcache.audio import load_audio, load_utterance
from featcache.errors import AudioError
from featcache.manifest import Manifest, write_manifest
from featcache.testing.corpus import write_wav


def _tone(sr, seconds, freq=440.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_44k_stereo_becomes_16k_mono_with_the_right_length(tmp_path):
    left, right = _tone(44100, 1.5, 440), _tone(44100, 1.5, 660)
    path = write_wav(tmp_path / "s.wav", np.stack([left, right], axis=1), 44100)
    wav = load_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1 and len(wav) == 24000
    # downmix is the mean of the channels, so the spectrum has both tones at half amplitude
    spectrum = np.abs(np.fft.rfft(wav)) / len(wav) * 2
    freqs = np.fft.rfftfreq(len(wav), 1 / 16000)
    for f in (440, 660):
        assert spectrum[np.argmin(np.abs(freqs - f))] == pytest.approx(0.25, abs=0.02)
    only_right = load_audio(path, channel=1)
    spectrum = np.abs(np.fft.rfft(only_right)) / len(only_right) * 2
    assert spectrum[np.argmin(np.abs(freqs - 660))] == pytest.approx(0.5, abs=0.02)
    assert spectrum[np.argmin(np.abs(freqs - 440))] < 0.01


def test_flac_and_segment_load_at_16k(tmp_path):
    wav = np.random.default_rng(0).uniform(-0.5, 0.5, 3 * 22050).astype(np.float32)
    path = write_wav(tmp_path / "x.flac", wav, 22050)
    assert len(load_audio(path)) == 48000
    seg = load_audio(path, start=1.0, duration=0.5)
    assert len(seg) == 8000
    write_manifest(
        [{"id": "seg", "audio": "x.flac", "start": 2.0, "duration": 0.75, "split": "test"}],
        tmp_path / "m.jsonl",
    )
    assert len(load_utterance(Manifest.load(tmp_path / "m.jsonl")["seg"])) == 12000


def test_segment_samples_are_the_right_ones(tmp_path):
    ramp = (np.arange(32000) / 32000).astype(np.float32)
    path = write_wav(tmp_path / "r.wav", ramp, 16000, subtype="FLOAT")
    seg = load_audio(path, start=0.5, duration=0.25)
    np.testing.assert_array_equal(seg, ramp[8000:12000])


def test_errors_name_the_file_or_utterance(tmp_path):
    write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00junk" * 10)
    with pytest.raises(AudioError, match="junk.wav"):
        load_audio(tmp_path / "junk.wav")
    full = write_wav(tmp_path / "full.wav", _tone(16000, 1.0))
    (tmp_path / "cut.wav").write_bytes(full.read_bytes()[: 44 + 8000])  # header says 32000 bytes
    with pytest.raises(AudioError, match="truncated"):
        load_audio(tmp_path / "cut.wav")
    with pytest.raises(AudioError, match="past the end"):
        load_audio(full, start=0.5, duration=1.0)
    with pytest.raises(AudioError, match="channel 3"):
        load_audio(full, channel=3)
    write_manifest([{"id": "u1", "audio": "cut.wav"}], tmp_path / "m.jsonl")
    with pytest.raises(AudioError, match="utterance 'u1'"):
        load_utterance(Manifest.load(tmp_path / "m.jsonl")["u1"])
