"""Whisper's encoder: 30 s windows, kept frames, mel features, and the real tiny.en weights."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from featcache.testing.models import direct_forward
from featcache.upstreams import load_upstream
from featcache.upstreams.loading import checkpoint_keys, load_checked

WINDOW = 480000


def _chirp(seconds, seed=0):
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    rng = np.random.default_rng(seed)
    wav = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.01 * rng.standard_normal(n)
    return wav.astype(np.float32)


def test_log_mel_equals_whisper_feature_extractor():
    from transformers import WhisperFeatureExtractor

    up = load_upstream("random:tiny-whisper")
    wav = _chirp(2.5)
    expected = WhisperFeatureExtractor()(
        wav, sampling_rate=16000, return_tensors="np"
    ).input_features
    window = torch.zeros(1, WINDOW)
    window[0, : len(wav)] = torch.from_numpy(wav)
    np.testing.assert_allclose(up.log_mel(window).numpy(), expected, atol=2e-5)


def test_audio_longer_than_30_s_is_windowed_and_concatenated():
    up = load_upstream("random:tiny-whisper")
    wav = _chirp(31.3)  # 500800 samples: a full window plus 20800 samples
    out = up.forward([wav])[0]
    assert out.shape[1] == math.ceil(len(wav) / 320) == 1500 + 65 == up.num_frames(len(wav))
    first = direct_forward(up.model, wav[:WINDOW])  # a plain forward of the first 30 s
    assert first.shape[1] == 1500
    np.testing.assert_allclose(out[:, :1500], first, rtol=1e-4, atol=1e-5)
    second = direct_forward(up.model, wav[WINDOW:])
    np.testing.assert_allclose(out[:, 1500:], second, rtol=1e-4, atol=1e-5)
    assert up.policy["window"].startswith("consecutive 30 s windows")


def test_frames_cover_exactly_the_real_audio():
    up = load_upstream("random:tiny-whisper")
    lengths = [1, 319, 320, 321, 16000, WINDOW - 1, WINDOW, WINDOW + 1]
    assert [up.num_frames(n) for n in lengths] == [1, 1, 1, 2, 50, 1500, 1500, 1501]
    outs = up.forward([_chirp(n / 16000) for n in (320, 321, 16000)])
    assert [o.shape[1] for o in outs] == [1, 2, 50]


def _speech(tmp_path):
    """espeak-ng speech if installed, else a chirp: test audio made on the spot."""
    path = tmp_path / "speech.wav"
    try:
        subprocess.run(
            ["espeak-ng", "-w", str(path), "Layer caches make fusion cheap."],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return _chirp(2.0)
    import soxr

    wav, rate = sf.read(path, dtype="float32")
    return soxr.resample(wav, rate, 16000).astype(np.float32)


@pytest.mark.realmodel
def test_real_whisper_tiny_en_encoder(shared_models, tmp_path):
    folder = shared_models / "whisper-tiny.en"
    if not (folder / "model.safetensors").is_file():
        pytest.skip("whisper-tiny.en weights are absent")
    from transformers import WhisperModel

    assert any(k.startswith("model.encoder.") for k in checkpoint_keys(folder))
    full, dropped = load_checked(WhisperModel, folder)  # strict: no missing/unexpected at all
    assert dropped == []
    up = load_upstream(str(folder))
    assert (up.num_layers, up.hidden_size, up.frame_rate) == (5, 384, 50.0)
    assert up.provenance["source"] == str(folder.resolve())
    for key, value in full.encoder.state_dict().items():
        torch.testing.assert_close(up.model.state_dict()[key], value, rtol=0, atol=0)
    wav = _speech(tmp_path)
    out = up.forward([wav])[0]
    reference = direct_forward(full.encoder, wav)  # WhisperFeatureExtractor + encoder forward
    assert out.shape == reference.shape == (5, math.ceil(len(wav) / 320), 384)
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=2e-4)
    assert np.abs(out[-1]).mean() > 0.1  # real activations, not an all-zero encoder
