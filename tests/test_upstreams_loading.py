"""Checkpoint folders load completely or fail; the hub fails fast; provenance is recorded."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from featcache.errors import UpstreamError
from featcache.testing.models import direct_forward, save_tiny_checkpoint, tiny_model
from featcache.upstreams import load_upstream
from featcache.upstreams.loading import load_checked

FAMILIES = ["hubert", "wav2vec2", "wavlm", "data2vec", "whisper"]


def _wav(n=9000):
    return (0.1 * np.random.default_rng(5).standard_normal(n)).astype(np.float32)


def _tamper(folder, edit):
    path = folder / "model.safetensors"
    state = load_file(str(path))
    edit(state)
    save_file(state, str(path), metadata={"format": "pt"})


@pytest.mark.parametrize("family", FAMILIES)
def test_local_folder_loads_and_equals_the_saved_model(tmp_path, family):
    folder = save_tiny_checkpoint(tmp_path / family, family, seed=4)
    up = load_upstream(str(folder))
    reference = tiny_model(family, seed=4)
    wav = _wav()
    np.testing.assert_allclose(
        up.forward([wav])[0], direct_forward(reference, wav), rtol=1e-4, atol=1e-5
    )
    prov = up.provenance
    assert prov["source"] == str(folder.resolve())
    assert prov["revision"] is None and "untrained" not in prov
    assert up.slug == family


def test_missing_weight_is_an_error(tmp_path):
    folder = save_tiny_checkpoint(tmp_path / "m", "hubert")
    _tamper(folder, lambda s: s.pop("encoder.layers.0.attention.k_proj.weight"))
    with pytest.raises(UpstreamError, match=r"1 missing \(encoder\.layers\.0\.attention\.k_proj"):
        load_upstream(str(folder))


def test_unexpected_weight_inside_the_model_is_an_error(tmp_path):
    folder = save_tiny_checkpoint(tmp_path / "u", "wavlm")
    _tamper(folder, lambda s: s.__setitem__("encoder.layers.0.extra.weight", torch.zeros(3)))
    with pytest.raises(UpstreamError, match="1 unexpected"):
        load_upstream(str(folder))


def test_mismatched_shape_is_an_error(tmp_path):
    folder = save_tiny_checkpoint(tmp_path / "s", "wav2vec2")
    key = "encoder.layers.1.feed_forward.output_dense.weight"
    _tamper(folder, lambda s: s.__setitem__(key, torch.zeros(5, 5)))
    with pytest.raises(UpstreamError, match=r"1 mismatched \(encoder\.layers\.1\.feed_forward"):
        load_upstream(str(folder))


def test_head_weights_outside_the_model_are_dropped_and_recorded(tmp_path):
    folder = save_tiny_checkpoint(tmp_path / "ctc", "hubert", head="ctc", seed=2)
    up = load_upstream(str(folder))
    assert up.provenance["dropped_keys"] == ["lm_head.bias", "lm_head.weight"]
    wav = _wav()
    np.testing.assert_allclose(
        up.forward([wav])[0],
        direct_forward(tiny_model("hubert", seed=2), wav),
        rtol=1e-4,
        atol=1e-5,
    )


def test_do_normalize_from_preprocessor_config(tmp_path):
    folder = save_tiny_checkpoint(tmp_path / "n", "wav2vec2", layer_norm=True, do_normalize=True)
    up = load_upstream(str(folder))
    assert up.normalize and up.policy["input_normalization"].startswith("per-utterance")
    wavs = [_wav(9000) * 3 + 0.2, _wav(5000)]
    outs = up.forward(wavs)  # padded batch: normalisation must use each utterance's real samples
    for wav, out in zip(wavs, outs, strict=True):
        ref = direct_forward(up.model, wav, normalize=True)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_full_whisper_checkpoint_keeps_a_fully_loaded_encoder(tmp_path):
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    folder = save_tiny_checkpoint(tmp_path / "w", "whisper", seed=9)
    # the trap: the encoder class alone on a full checkpoint loads nothing; featcache refuses it
    with pytest.raises(UpstreamError, match="missing"):
        load_checked(WhisperEncoder, folder)
    up = load_upstream(str(folder))
    original = tiny_model("whisper", seed=9).encoder.state_dict()
    loaded = up.model.state_dict()
    assert loaded.keys() == original.keys()
    for key, value in original.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert up.provenance["architecture"] == "WhisperEncoder"
    assert "full Whisper checkpoint" in up.provenance["kept"]


def test_encoder_only_whisper_checkpoint_loads_strictly(tmp_path):
    folder = save_tiny_checkpoint(tmp_path / "e", "whisper", seed=9, encoder_only=True)
    up = load_upstream(str(folder))
    assert up.provenance["kept"] == "encoder-only checkpoint"
    wav = _wav()
    np.testing.assert_allclose(
        up.forward([wav])[0],
        direct_forward(tiny_model("whisper", seed=9), wav),
        rtol=1e-4,
        atol=1e-5,
    )
    _tamper(folder, lambda s: s.pop("layers.1.fc1.weight"))
    with pytest.raises(UpstreamError, match="missing"):
        load_upstream(str(folder))


def test_revision_is_read_from_a_hub_cache_snapshot(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "models--org--tiny" / "snapshots" / commit
    save_tiny_checkpoint(snapshot, "hubert")
    assert load_upstream(str(snapshot)).provenance["revision"] == commit


def test_folder_without_config_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UpstreamError, match="no config.json"):
        load_upstream(str(tmp_path / "empty"))
    folder = save_tiny_checkpoint(tmp_path / "noweights", "hubert")
    (folder / "model.safetensors").unlink()
    with pytest.raises(UpstreamError, match="cannot load"):
        load_upstream(str(folder))


def test_offline_hub_fails_fast_with_local_folder_advice(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(UpstreamError, match=r"HF_HUB_OFFLINE=1.*-u DIR"):
        load_upstream("hubert-base", cache_dir=tmp_path)
    with pytest.raises(UpstreamError, match="facebook/wav2vec2-xls-r-1b"):
        load_upstream("facebook/wav2vec2-xls-r-1b", cache_dir=tmp_path)
    assert time.monotonic() - start < 20


def test_unreachable_hub_fails_fast_with_local_folder_advice(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    start = time.monotonic()
    with pytest.raises(
        UpstreamError, match=r"cannot reach the model hub at http://127.0.0.1:9.*-u DIR"
    ):
        load_upstream("wavlm-base-plus", cache_dir=tmp_path)
    assert time.monotonic() - start < 20


def test_hub_id_found_in_the_local_cache_loads_offline(monkeypatch, tmp_path):
    """A cached snapshot is used with HF_HUB_OFFLINE=1, and its commit becomes the revision."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "fedcba9876543210fedcba9876543210fedcba98"
    repo = tmp_path / "models--featcache-test--tiny-hubert"
    save_tiny_checkpoint(repo / "snapshots" / commit, "hubert", seed=1)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    up = load_upstream("featcache-test/tiny-hubert", cache_dir=tmp_path)
    assert up.provenance["source"] == "featcache-test/tiny-hubert"
    assert up.provenance["revision"] == commit
    assert up.slug == "featcache-test--tiny-hubert"
    shutil.rmtree(repo)
