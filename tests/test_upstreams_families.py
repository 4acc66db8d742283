"""Each upstream family (tiny random configs): eval mode, layer count, frame counts, exactness."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from featcache.errors import AudioError, UpstreamError
from featcache.testing.models import direct_forward, tiny_config
from featcache.upstreams import load_upstream
from featcache.upstreams.hf import SSLUpstream

SSL = ["random:tiny-hubert", "random:tiny-wav2vec2", "random:tiny-wavlm", "random:tiny-data2vec"]
ALL = [*SSL, "random:tiny-whisper"]


def _wav(n, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("name", ALL)
def test_eval_mode_layers_and_provenance(name):
    up = load_upstream(name)
    assert not up.model.training
    assert all(not m.training for m in up.model.modules())
    config = up.model.config
    layers = config.encoder_layers if "whisper" in name else config.num_hidden_layers
    assert up.num_layers == layers + 1
    out = up.forward([_wav(8000)])[0]
    assert out.dtype == np.float32 and out.shape[0] == layers + 1
    prov = up.provenance
    json.dumps(prov), json.dumps(up.policy)  # both go into the store's attrs
    assert prov["source"] == "random-init config" and prov["untrained"] is True
    assert prov["revision"] is None and len(prov["config_sha256"]) == 64
    assert prov["architecture"] == type(up.model).__name__
    assert (prov["frame_rate"], prov["num_layers"], prov["hidden_size"]) == (50.0, layers + 1, 32)


@pytest.mark.parametrize("name", ALL)
def test_same_name_same_weights_and_output(name):
    a, b = load_upstream(name), load_upstream(name)
    wav = _wav(6000, seed=3)
    np.testing.assert_array_equal(a.forward([wav])[0], b.forward([wav])[0])
    assert a.provenance == b.provenance


def test_different_families_differ():
    hashes = {load_upstream(n).provenance["config_sha256"] for n in ALL}
    assert len(hashes) == len(ALL)


@pytest.mark.parametrize("name", ALL)
def test_num_frames_matches_forward_for_many_lengths(name):
    up = load_upstream(name)
    lengths = [400, 401, 719, 720, 721, 1039, 1040, 16000, 16001, 23456]
    outs = up.forward([_wav(n, seed=n) for n in lengths])
    assert [o.shape[1] for o in outs] == [up.num_frames(n) for n in lengths]
    if name in SSL:  # documented formula of the standard conv stack
        assert [up.num_frames(n) for n in lengths] == [(n - 400) // 320 + 1 for n in lengths]
    else:
        assert [up.num_frames(n) for n in lengths] == [-(-n // 320) for n in lengths]


@pytest.mark.parametrize("name", ALL)
def test_forward_equals_direct_transformers_forward(name):
    up = load_upstream(name)
    wav = _wav(12000, seed=7)
    expected = direct_forward(up.model, wav)
    np.testing.assert_allclose(up.forward([wav])[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", SSL)
def test_too_short_audio_is_a_clear_audio_error(name):
    up = load_upstream(name)
    assert up.min_samples == 400 and up.num_frames(399) == 0
    with pytest.raises(AudioError, match=r"waveform 1 of the batch: 399 samples .* 400 samples"):
        up.forward([_wav(16000), _wav(399)])
    with pytest.raises(AudioError, match="utt7"):
        up.check_length(0, where="utt7")
    assert up.forward([_wav(400)])[0].shape[1] == 1


def test_whisper_accepts_any_nonempty_length_and_rejects_empty():
    up = load_upstream("random:tiny-whisper")
    assert up.forward([_wav(1)])[0].shape[1] == 1
    with pytest.raises(AudioError, match="0 samples"):
        up.forward([np.zeros(0, np.float32)])


def test_multichannel_input_is_rejected_with_its_position():
    up = load_upstream("fbank")
    with pytest.raises(AudioError, match="waveform 0 .* shape \\(2, 800\\)"):
        up.forward([np.zeros((2, 800), np.float32)])


def test_layerdrop_config_is_deterministic_in_eval_mode():
    """A config with LayerDrop still returns every layer, identically on every call (eval)."""
    import transformers

    config = tiny_config("hubert", layerdrop=0.9, hidden_dropout=0.5, num_hidden_layers=4)
    torch.manual_seed(0)
    model = transformers.HubertModel(config)
    model.train()  # as a fresh from_config model may be: the upstream must switch it off
    up = SSLUpstream(
        model,
        name="t",
        slug="t",
        source="random-init config",
        revision=None,
        device=torch.device("cpu"),
    )
    wav = _wav(8000)
    first, second = up.forward([wav])[0], up.forward([wav])[0]
    assert first.shape[0] == 5
    np.testing.assert_array_equal(first, second)


def test_model_returning_wrong_hidden_state_count_is_caught():
    import transformers

    class Truncating(transformers.HubertModel):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.hidden_states = out.hidden_states[:-1]
            return out

    torch.manual_seed(0)
    model = Truncating(tiny_config("hubert"))
    up = SSLUpstream(
        model, name="cut", slug="cut", source="x", revision=None, device=torch.device("cpu")
    )
    with pytest.raises(UpstreamError, match="num_hidden_layers \\+ 1 = 3"):
        up.forward([_wav(4000)])
