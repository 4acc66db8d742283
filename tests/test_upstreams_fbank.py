"""fbank: Kaldi-style 80-dim log-mel, 25 ms / 10 ms, one layer at 100 frames/s."""

from __future__ import annotations

import math

import numpy as np
import pytest

from featcache.errors import AudioError
from featcache.upstreams import load_upstream


def _kaldi_reference(wav):
    """Kaldi compute-fbank-feats defaults, frame by frame, written from Kaldi's documentation."""

    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    low, high = mel(20.0), mel(8000.0)
    delta = (high - low) / 81
    banks = np.zeros((80, 257))
    for m in range(80):
        left, center, right = low + m * delta, low + (m + 1) * delta, low + (m + 2) * delta
        for k in range(256):
            x = mel(k * 16000 / 512)
            if left < x <= center:
                banks[m, k] = (x - left) / (center - left)
            elif center < x < right:
                banks[m, k] = (right - x) / (right - center)
    n = np.arange(400)
    povey = (0.5 - 0.5 * np.cos(2 * np.pi * n / 399)) ** 0.85
    rows = []
    for t in range(1 + (len(wav) - 400) // 160):
        frame = wav[t * 160 : t * 160 + 400].astype(np.float64) * 32768
        frame = frame - frame.mean()
        frame = np.concatenate([[frame[0] * (1 - 0.97)], frame[1:] - 0.97 * frame[:-1]])
        power = np.abs(np.fft.rfft(frame * povey, n=512)) ** 2
        rows.append(np.log(np.maximum(banks @ power, np.finfo(np.float32).eps)))
    return np.array(rows)


def test_fbank_equals_kaldi_reference():
    wav = (0.1 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    up = load_upstream("fbank")
    out = up.forward([wav])[0]
    assert out.shape == (1, 1 + (4000 - 400) // 160, 80) == (1, up.num_frames(4000), 80)
    np.testing.assert_allclose(out[0], _kaldi_reference(wav), rtol=1e-4, atol=1e-3)


def test_tone_peaks_in_the_right_mel_bin():
    t = np.arange(16000) / 16000
    up = load_upstream("fbank")
    peaks = []
    for freq in (300.0, 1000.0, 4000.0):
        out = up.forward([(0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)])[0]
        peaks.append(int(np.argmax(out[0].mean(axis=0))))
    centers = [
        700
        * (
            math.exp(
                (
                    1127 * math.log(1 + 20 / 700)
                    + (b + 1)
                    * ((1127 * math.log(1 + 8000 / 700) - 1127 * math.log(1 + 20 / 700)) / 81)
                )
                / 1127
            )
            - 1
        )
        for b in peaks
    ]
    for freq, center in zip((300.0, 1000.0, 4000.0), centers, strict=True):
        assert abs(center - freq) / freq < 0.08
    assert peaks == sorted(peaks)


def test_fbank_metadata_frames_and_too_short():
    up = load_upstream("fbank")
    assert (up.num_layers, up.hidden_size, up.frame_rate, up.slug) == (1, 80, 100.0, "fbank")
    assert (
        up.provenance["architecture"] == "KaldiFbank" and len(up.provenance["config_sha256"]) == 64
    )
    lengths = [400, 559, 560, 16000, 16399]
    outs = up.forward([np.ones(n, np.float32) * 0.01 for n in lengths])
    assert [o.shape[1] for o in outs] == [up.num_frames(n) for n in lengths] == [1, 1, 2, 98, 100]
    with pytest.raises(AudioError, match="399 samples .*needs for one frame"):
        up.forward([np.zeros(399, np.float32)])
