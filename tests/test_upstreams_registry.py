"""Upstream names, slugs, random specs, and device/autocast options."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from featcache.errors import ConfigError, UpstreamError
from featcache.upstreams import REGISTRY, load_upstream, upstream_slug
from featcache.upstreams.device import resolve_autocast, resolve_device
from featcache.upstreams.random import random_specs
from featcache.upstreams.registry import resolve


def test_registry_names_map_to_hub_ids():
    for short in (
        "hubert-base",
        "hubert-large",
        "wavlm-base",
        "wavlm-base-plus",
        "wavlm-large",
        "data2vec-base",
        "data2vec-large",
        "wav2vec2-base",
        "wav2vec2-large",
        "whisper-tiny",
        "whisper-base",
        "whisper-small",
        "whisper-medium",
        "whisper-large",
        "whisper-large-v3",
        "whisper-small.en",
        "whisper-medium.en",
    ):
        kind, hub_id = resolve(short)
        assert kind == "hub" and hub_id == REGISTRY[short].value and "/" in hub_id
    assert REGISTRY["wavlm-base-plus"].value == "microsoft/wavlm-base-plus"
    assert REGISTRY["whisper-small.en"].value == "openai/whisper-small.en"


def test_resolve_kinds(tmp_path):
    assert resolve("fbank") == ("fbank", "fbank")
    assert resolve("random:tiny-hubert") == ("random", "tiny-hubert")
    assert resolve("facebook/hubert-base-ls960") == ("hub", "facebook/hubert-base-ls960")
    assert resolve(str(tmp_path)) == ("folder", str(tmp_path.resolve()))


@pytest.mark.parametrize("bad", ["hubert-bse", "./no/such/folder", "nonsense"])
def test_unknown_names_are_upstream_errors_with_hints(bad):
    with pytest.raises(UpstreamError, match="unknown upstream") as info:
        resolve(bad)
    assert "\n" not in str(info.value)
    if bad == "hubert-bse":
        assert "did you mean hubert-base" in str(info.value)
    if bad.startswith("./"):
        assert "no folder" in str(info.value)


def test_slugs_are_filesystem_safe(tmp_path):
    assert upstream_slug("random:tiny-hubert") == "random-tiny-hubert"
    assert upstream_slug("hubert-base") == "hubert-base"
    assert upstream_slug("whisper-small.en") == "whisper-small.en"
    assert upstream_slug("facebook/hubert-base-ls960") == "facebook--hubert-base-ls960"
    folder = tmp_path / "my model"
    folder.mkdir()
    assert upstream_slug(str(folder)) == "my_model"
    assert upstream_slug(str(folder) + "/") == "my_model"
    assert load_upstream("random:tiny-hubert").slug == "random-tiny-hubert"


def test_random_specs_all_load_and_unknown_spec_lists_them():
    tiny = [s for s in random_specs() if s.startswith("tiny-")]
    assert len(tiny) == 8
    for spec in tiny:
        up = load_upstream(f"random:{spec}")
        assert up.hidden_size == 32 and up.provenance["untrained"] is True
    with pytest.raises(UpstreamError, match="random:tiny-hubert, "):
        load_upstream("random:tiny-conformer")


@pytest.mark.slow
def test_base_size_random_config_is_768_by_12():
    up = load_upstream("random:hubert-base")
    assert (up.num_layers, up.hidden_size) == (13, 768)
    assert up.forward([np.zeros(800, np.float32)])[0].shape == (13, 2, 768)


def test_device_resolution_on_this_machine():
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(resolve_device("auto")) == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    up = load_upstream("random:tiny-wavlm", device="auto")
    assert str(up.device) == expected
    assert next(up.model.parameters()).device == up.device


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_clear_config_error(device):
    with pytest.raises(ConfigError, match=r"no CUDA.*--device cpu"):
        load_upstream("random:tiny-hubert", device=device)


def test_autocast_is_an_explicit_recorded_option():
    assert resolve_autocast(None) is None
    assert resolve_autocast("float32") is None
    with pytest.raises(ConfigError, match="unknown autocast dtype 'int8'"):
        resolve_autocast("int8")
    exact = load_upstream("random:tiny-hubert")
    fast = load_upstream("random:tiny-hubert", autocast="bfloat16")
    assert exact.policy["autocast"] is None and fast.policy["autocast"] == "bfloat16"
    wav = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    a, b = exact.forward([wav])[0], fast.forward([wav])[0]
    assert b.dtype == np.float32 and b.shape == a.shape
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 0.1  # close, but not the exact path


def test_importing_upstreams_does_not_import_torch():
    code = "import sys, featcache.upstreams; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
