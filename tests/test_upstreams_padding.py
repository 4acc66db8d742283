"""Batching never changes the layers: measured per family, and the recorded policy follows it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featcache.testing.models import direct_forward
from featcache.upstreams import load_upstream
from featcache.upstreams.base import plan_batches

GROUP_NORM = ["random:tiny-hubert", "random:tiny-wav2vec2", "random:tiny-wavlm"]
LAYER_NORM = ["random:tiny-hubert-ln", "random:tiny-wav2vec2-ln", "random:tiny-wavlm-ln"]
LENGTHS = [16000, 9000, 4100, 16000, 9000]


def _wavs(lengths=LENGTHS):
    rng = np.random.default_rng(1)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _padded_deviation(model, wavs, mask):
    """Largest relative difference between a zero-padded batch and single forwards."""
    lengths = [len(w) for w in wavs]
    batch = torch.zeros(len(wavs), max(lengths))
    attention = torch.zeros(len(wavs), max(lengths), dtype=torch.long)
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = torch.from_numpy(w)
        attention[i, : len(w)] = 1
    with torch.inference_mode():
        out = model(batch, attention_mask=attention if mask else None, output_hidden_states=True)
    hidden = torch.stack(out.hidden_states).numpy()  # (L, B, T_max, D)
    devs = []
    for i, w in enumerate(wavs):
        single = direct_forward(model, w)
        devs.append(_rel(hidden[:, i, : single.shape[1]], single))
    return max(devs)


@pytest.mark.parametrize("name", [*GROUP_NORM, *LAYER_NORM, "random:tiny-data2vec"])
def test_batched_forward_equals_single_forwards(name):
    up = load_upstream(name)
    wavs = _wavs()
    batched = up.forward(wavs)
    for wav, out in zip(wavs, batched, strict=True):
        np.testing.assert_allclose(out, up.forward([wav])[0], rtol=1e-4, atol=1e-5)
        assert _rel(out, direct_forward(up.model, wav)) < 1e-4


@pytest.mark.parametrize("name", [*GROUP_NORM, "random:tiny-data2vec"])
def test_padding_is_inexact_so_policy_batches_equal_lengths_only(name):
    """The trap is real for these families (even with a mask); the policy must not pad."""
    up = load_upstream(name)
    wavs = _wavs([16000, 9000, 4100])
    assert _padded_deviation(up.model, wavs, mask=False) > 1e-2
    assert _padded_deviation(up.model, wavs, mask=True) > 1e-2
    assert up.policy["batching"] == "equal-length" and up.policy["attention_mask"] is False


@pytest.mark.parametrize("name", LAYER_NORM)
def test_layer_norm_front_end_with_mask_is_exact_so_policy_pads(name):
    up = load_upstream(name)
    wavs = _wavs([16000, 9000, 4100])
    assert _padded_deviation(up.model, wavs, mask=True) < 1e-5
    assert _padded_deviation(up.model, wavs, mask=False) > 1e-2  # the mask is what saves it
    assert up.policy["batching"] == "padded" and up.policy["attention_mask"] is True


def test_whisper_windows_batch_exactly():
    up = load_upstream("random:tiny-whisper")
    wavs = _wavs([16000, 4100, 9000])
    batched = up.forward(wavs)
    for wav, out in zip(wavs, batched, strict=True):
        np.testing.assert_allclose(out, up.forward([wav])[0], rtol=1e-4, atol=1e-5)
    assert up.policy["batching"] == "padded-30s-windows"


def test_max_batch_splits_calls_without_changing_results():
    a = load_upstream("random:tiny-hubert-ln")
    b = load_upstream("random:tiny-hubert-ln", max_batch=2)
    wavs = _wavs()
    for x, y in zip(a.forward(wavs), b.forward(wavs), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_plan_batches_policies():
    lengths = [5, 3, 5, 7, 3]
    assert plan_batches(lengths, "single") == [[1], [4], [0], [2], [3]]
    assert plan_batches(lengths, "equal-length") == [[1, 4], [0, 2], [3]]
    assert plan_batches(lengths, "padded") == [[1, 4, 0, 2, 3]]
    assert plan_batches(lengths, "padded", max_batch=2) == [[1, 4], [0, 2], [3]]
    for mode in ("single", "equal-length", "padded"):
        assert sorted(i for g in plan_batches(lengths, mode) for i in g) == list(range(5))
