"""Cached layers equal direct transformers forwards, for every family, read without featcache.

The stores are read with plain zarr / h5py following DESIGN.md's contract; references are plain
``model(x, output_hidden_states=True)`` forwards of each utterance alone.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from featcache.audio import load_audio
from featcache.pipelines.extract import ExtractConfig, extract
from featcache.upstreams import load_upstream

SR = 16000
FAMILIES = ["hubert", "wav2vec2", "wavlm", "data2vec", "whisper"]
MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Tone, noise and (equal-length) twin utterances, plus one espeak-ng sentence."""
    root = tmp_path_factory.mktemp("corpus")
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(0.9 * SR)) / SR
    wavs = {
        "tone": 0.3 * np.sin(2 * np.pi * 220 * t),
        "noise": 0.1 * rng.standard_normal(int(0.61 * SR)),
        "twin-a": 0.2 * np.sin(2 * np.pi * 330 * t) + 0.01 * rng.standard_normal(len(t)),
        "twin-b": 0.2 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(len(t)),
    }
    records = []
    for name, wav in wavs.items():
        sf.write(root / f"{name}.wav", wav.astype(np.float32), SR)
        records.append({"id": name, "audio": f"{name}.wav"})
    speech = root / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(speech), "the cached layers must match"], check=True)
    records.append({"id": "speech", "audio": "speech.wav"})
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root / "m.jsonl"


def read_store(path: Path) -> dict[str, np.ndarray]:
    """utt_id -> (T, L, D) float32, read with plain zarr or h5py from the contract alone."""
    if path.suffix == ".zarr":
        import zarr

        g = zarr.open_group(str(path), mode="r")
        ids, part, off, n = g["utt_id"][:], g["part"][:], g["offset"][:], g["num_frames"][:]
        frames = lambda k: g[f"parts/{k}/frames"]  # noqa: E731
        pooled = g["pooled/mean"][:]
        out = {str(u): frames(part[i])[off[i] : off[i] + n[i]] for i, u in enumerate(ids)}
    else:
        import h5py
        import hdf5plugin  # noqa: F401

        with h5py.File(path, "r") as f:
            ids, part, off, n = (
                f["utt_id"].asstr()[:],
                f["part"][:],
                f["offset"][:],
                f["num_frames"][:],
            )
            pooled = f["pooled/mean"][:]
            out = {
                str(u): f[f"parts/{part[i]}/frames"][off[i] : off[i] + n[i]]
                for i, u in enumerate(ids)
            }
    return {u: a.astype(np.float32) for u, a in out.items()}, dict(zip(out, pooled, strict=True))


def direct(upstream, wav: np.ndarray) -> np.ndarray:
    """(L, T, D) from a plain transformers forward of one utterance (Whisper: 30 s windows)."""
    import torch

    model = upstream.model
    if model.config.model_type != "whisper":
        with torch.inference_mode():
            out = model(torch.from_numpy(wav)[None], output_hidden_states=True)
        return torch.stack(out.hidden_states)[:, 0].numpy()
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    pieces = []
    for start in range(0, len(wav), 30 * SR):
        window = wav[start : start + 30 * SR]
        x = fe(window, sampling_rate=SR, return_tensors="pt").input_features
        with torch.inference_mode():
            hidden = model(x, output_hidden_states=True).hidden_states
        pieces.append(torch.stack(hidden)[:, 0, : math.ceil(len(window) / 320)].numpy())
    return np.concatenate(pieces, axis=1)


def assert_cached_equals(cached, pooled, reference, float16=True):
    """Equal within float16 rounding (relative to each layer's scale), pooled within float32."""
    ref = reference.transpose(1, 0, 2)  # (T, L, D)
    assert cached.shape == ref.shape
    scale = np.abs(ref).max(axis=(0, 2), keepdims=True)  # (1, L, 1) per-layer magnitude
    tol = 2e-3 if float16 else 1e-5
    excess = np.abs(cached - ref) - tol * (np.abs(ref) + scale)
    assert excess.max() <= 0, f"max |cached - direct| exceeds tolerance by {excess.max():.3g}"
    excess = np.abs(pooled - ref.mean(axis=0)) - 1e-4 * (np.abs(ref.mean(axis=0)) + scale[0])
    assert excess.max() <= 0, f"pooled mean off by {excess.max():.3g}"


def test_every_family_equals_direct_forwards(corpus, tmp_path):
    names = [f"random:tiny-{f}" for f in FAMILIES] + ["fbank"]
    cfg = ExtractConfig(corpus, names, tmp_path, device="cpu", part_size=2, progress=False)
    result = extract(cfg)
    assert not result.failed
    wavs = {u: load_audio(corpus.parent / f"{u}.wav") for u in
            ["tone", "noise", "twin-a", "twin-b", "speech"]}  # fmt: skip
    for name, summary in zip(names, result.stores, strict=True):
        cached, pooled = read_store(summary.path)
        assert list(cached) == list(wavs)
        upstream = load_upstream(name, device="cpu")
        for u, wav in wavs.items():
            ref = upstream.forward([wav])[0] if name == "fbank" else direct(upstream, wav)
            assert_cached_equals(cached[u], pooled[u], ref)


def test_hdf5_float32_layer_subset_and_long_whisper(tmp_path):
    """HDF5 with --dtype float32 --layers 0,2; a 35 s utterance goes through Whisper in windows."""
    import soundfile as sf

    rng = np.random.default_rng(1)
    long = 0.1 * rng.standard_normal(35 * SR + 123).astype(np.float32)
    sf.write(tmp_path / "long.wav", long, SR)
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "long", "audio": "long.wav"}) + "\n")
    names = ["random:tiny-whisper", "random:tiny-hubert"]
    cfg = ExtractConfig(tmp_path / "m.jsonl", names, tmp_path / "c", format="hdf5",
                        dtype="float32", layers="0,2", device="cpu", progress=False)  # fmt: skip
    result = extract(cfg)
    wav = load_audio(tmp_path / "long.wav")
    for name, summary in zip(names, result.stores, strict=True):
        assert summary.path.suffix == ".h5"
        cached, pooled = read_store(summary.path)
        ref = direct(load_upstream(name, device="cpu"), wav)[[0, 2]]
        if name.endswith("whisper"):
            assert cached["long"].shape[0] == math.ceil(len(wav) / 320) > 1500
        assert_cached_equals(cached["long"], pooled["long"], ref, float16=False)


@pytest.mark.realmodel
@pytest.mark.skipif(not (MODELS / "whisper-tiny.en").exists(), reason="no ../shared/models")
def test_real_whisper_tiny_en(corpus, tmp_path):
    import torch
    from transformers import WhisperFeatureExtractor, WhisperModel

    folder = MODELS / "whisper-tiny.en"
    lines = corpus.read_text().splitlines()
    wanted = [line for line in lines if json.loads(line)["id"] in ("speech", "tone")]
    manifest = corpus.parent / "real.jsonl"
    manifest.write_text("".join(line + "\n" for line in wanted))
    result = extract(ExtractConfig(manifest, [str(folder)], tmp_path, device="cpu", progress=False))
    cached, pooled = read_store(result.stores[0].path)
    encoder = WhisperModel.from_pretrained(folder, dtype=torch.float32).encoder.eval()
    fe = WhisperFeatureExtractor(feature_size=encoder.config.num_mel_bins)
    for u in ("speech", "tone"):
        wav = load_audio(corpus.parent / f"{u}.wav")
        x = fe(wav, sampling_rate=SR, return_tensors="pt").input_features
        with torch.inference_mode():
            hidden = encoder(x, output_hidden_states=True).hidden_states
        ref = torch.stack(hidden)[:, 0, : math.ceil(len(wav) / 320)].numpy()  # (L, T, D)
        assert ref.shape[0] == 5 and ref.shape[2] == 384
        assert_cached_equals(cached[u], pooled[u], ref)
