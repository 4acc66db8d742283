"""Alignment of models with different frame rates, layer counts and hidden sizes (2511.08389)."""

from __future__ import annotations

import torch

from featcache.fusion.align import (
    Aligner,
    interpolate_hidden,
    interpolate_layers,
    interpolate_time,
    resample_frames,
)


def test_50_frames_per_second_upsampled_to_100_keeps_a_time_ramp():
    # a 50 frames/s model: frame j covers the time (j + 0.5) / 50 s; value = that time
    slow = ((torch.arange(50) + 0.5) / 50).reshape(1, 1, 50, 1).expand(2, 3, 50, 4)
    fast = interpolate_time(slow, 100)
    assert fast.shape == (2, 3, 100, 4)
    centres = (torch.arange(100) + 0.5) / 100  # the 100 frames/s frame centres
    # interior frames are exact; the first and last frame hold the edge value
    torch.testing.assert_close(fast[0, 0, 1:-1, 0], centres[1:-1])
    torch.testing.assert_close(fast[1, 2, 0, 3], slow[0, 0, 0, 0])
    torch.testing.assert_close(fast[1, 2, -1, 3], slow[0, 0, -1, 0])


def test_5_layers_interpolated_to_13_stay_a_ramp():
    ramp = torch.arange(5.0).reshape(5, 1, 1, 1).expand(5, 2, 3, 4)  # layer i holds value i
    out = interpolate_layers(ramp, 13)
    assert out.shape == (13, 2, 3, 4)
    expected = torch.linspace(0, 4, 13)  # first and last layers line up, evenly spaced between
    torch.testing.assert_close(out[:, 1, 2, 3], expected)
    torch.testing.assert_close(out[0], ramp[0])
    torch.testing.assert_close(out[12], ramp[4])
    torch.testing.assert_close(out[3], ramp[1])  # layer 1 of 5 lands exactly on layer 3 of 13


def test_one_layer_is_repeated():
    x = torch.randn(1, 2, 3, 4)
    out = interpolate_layers(x, 13)
    assert out.shape == (13, 2, 3, 4) and torch.equal(out[7], x[0])


def test_hidden_size_interpolation_keeps_a_ramp():
    x = torch.linspace(0, 1, 768).reshape(1, 1, 1, 768)
    out = interpolate_hidden(x, 1024)
    torch.testing.assert_close(out[0, 0, 0], torch.linspace(0, 1, 1024))


def test_aligner_fbank_100fps_1_layer_with_ssl_50fps_13_layers():
    ssl = torch.randn(13, 2, 50, 32)
    fbank = torch.randn(1, 2, 100, 16)
    align = Aligner([(13, 32), (1, 16)])
    a, b = align([ssl, fbank])
    assert a.shape == b.shape == (13, 2, 100, 32)
    torch.testing.assert_close(a, interpolate_time(ssl, 100))
    torch.testing.assert_close(b[5], interpolate_hidden(fbank, 32)[0])
    projected = Aligner([(13, 32), (1, 16)], align_dim="project")
    assert sum(p.numel() for p in projected.parameters()) == 16 * 32 + 32
    assert projected([ssl, fbank])[1].shape == (13, 2, 100, 32)


def test_resample_frames_of_one_cached_utterance():
    t = (torch.arange(49) + 0.5) / 50
    utt = t.reshape(49, 1, 1).expand(49, 3, 2)  # (T, L, D) as stored
    out = resample_frames(utt, 98)
    assert out.shape == (98, 3, 2)
    torch.testing.assert_close(out[1:-1, 2, 1], ((torch.arange(98) + 0.5) / 100)[1:-1])
