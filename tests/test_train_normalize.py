"""Input standardisation: learning from features with large raw offsets and scales (as log-mel).

The cache holds features like log-mel filterbanks: a large negative offset, a large scale and a
small class-dependent shift in a few dimensions (the planted signal). Without standardisation the
paper's interfaces do not learn it; with train-split statistics they do, and the statistics are
stored in the checkpoint so ``evaluate`` reproduces the run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from featcache.manifest import Manifest
from featcache.pipelines.train import evaluate_run, train
from featcache.testing.caches import write_cache
from featcache.train.config import TrainConfig

CLASSES = 3
LAYERS, DIM = 3, 24
SHIFT = 0.35


def _features(rng, label: int, frames: int, offset: float, scale: float) -> np.ndarray:
    """``(T, L, D)``: per-dimension means of -15..5 plus ``offset``, ``scale`` * noise, a class
    shift of ``SHIFT`` std in 4 dimensions; the last layer 30 times larger."""
    dim_mean = np.linspace(-15.0, 5.0, DIM)  # per-dimension means as log-mel bands
    x = rng.standard_normal((frames, LAYERS, DIM)) * scale + dim_mean + offset
    x[:, :, 4 * label : 4 * label + 4] += SHIFT * scale
    x[:, -1] *= 30.0  # one layer with a far larger range, as some transformer layers
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """72 utterances (48 train, 12 dev, 12 test); dev/test are offset by -1 from train."""
    root = tmp_path_factory.mktemp("normalize")
    rng = np.random.default_rng(0)
    records, arrays = [], {}
    for i in range(72):
        split = ("train", "train", "train", "train", "dev", "test")[i % 6]
        label = (i // 6) % CLASSES
        records.append({"id": f"u{i:02d}", "audio": f"u{i}.wav", "style": f"c{label}",
                        "split": split})  # fmt: skip
        offset = 0.0 if split == "train" else -1.0  # dev/test statistics differ from train
        arrays[f"u{i:02d}"] = _features(rng, label, 20 + i % 7, offset, 3.0)
    manifest = Manifest.from_records(records, root / "manifest.jsonl")
    write_cache(root / "cache", "logmel", arrays, manifest, frame_rate=100.0)
    return root / "cache", arrays, records


def _config(cache_dir, out, **kw):
    values = dict(cache=str(cache_dir), out=str(out), upstreams=["logmel"], label="style",
                  epochs=8, patience=8, num_workers=0, batch_frames=300, device="cpu",
                  seed=3)  # fmt: skip
    values.update(kw)
    return TrainConfig(**values)


@pytest.mark.parametrize("interface", ["ws", "hconv"])
def test_interfaces_learn_large_offset_features_with_normalisation(cache, tmp_path, interface):
    cache_dir, _, _ = cache
    normed = train(_config(cache_dir, tmp_path / "global", interface=interface), log=lambda _: 0)
    raw = train(_config(cache_dir, tmp_path / "none", interface=interface, normalize="none"),
                log=lambda _: 0)  # fmt: skip
    assert normed["metrics"]["dev"]["accuracy"] >= 0.9, normed["metrics"]
    assert normed["metrics"]["test"]["accuracy"] >= 0.9, normed["metrics"]
    # the raw features (the paper's setting) are what the trainer failed to learn from
    assert raw["metrics"]["dev"]["accuracy"] <= normed["metrics"]["dev"]["accuracy"] - 0.2
    assert normed["normalization"]["mode"] == "global"
    assert raw["normalization"] == {"mode": "none"}
    assert json.loads((tmp_path / "none" / "config.json").read_text())["normalize"] == "none"


def test_statistics_come_from_the_train_split_only(cache, tmp_path):
    cache_dir, arrays, records = cache
    out = tmp_path / "run"
    summary = train(_config(cache_dir, out, interface="ws", epochs=1), log=lambda _: 0)
    train_ids = [r["id"] for r in records if r["split"] == "train"]
    frames = np.concatenate([arrays[u] for u in train_ids]).astype(np.float64)  # (N, L, D)
    state = torch.load(out / "best.pt", weights_only=False)["model"]
    np.testing.assert_allclose(state["normalize.mean_0"].numpy(), frames.mean(0), atol=1e-4)
    np.testing.assert_allclose(state["normalize.std_0"].numpy(), frames.std(0), rtol=1e-4)
    assert summary["normalization"]["utterances"] == len(train_ids)
    assert summary["normalization"]["frames"] == len(frames)
    # the whole cache (dev/test have offset -9) would give a visibly lower mean
    every = np.concatenate(list(arrays.values())).astype(np.float64)
    assert abs(every[:, 0].mean() - frames[:, 0].mean()) > 0.1


def test_sampling_caps_the_utterances_read(cache, tmp_path):
    cache_dir, _, _ = cache
    summary = train(_config(cache_dir, tmp_path / "run", interface="ws", epochs=1,
                            normalize_utterances=5), log=lambda _: 0)  # fmt: skip
    assert summary["normalization"]["utterances"] == 5


def test_evaluate_reproduces_the_summary_test_metric(cache, tmp_path):
    cache_dir, _, _ = cache
    out = tmp_path / "run"
    summary = train(_config(cache_dir, out, interface="hconv", epochs=3), log=lambda _: 0)
    again = evaluate_run(out, "test", log=lambda _: 0)
    assert again == summary["metrics"]["test"]


def test_standardize_keeps_padding_zero_and_uses_its_buffers():
    from featcache.train.normalize import Standardize

    norm = Standardize([(2, 3)])
    norm.set_stats({"mean": [np.full((2, 3), -10.0, np.float32)],
                    "std": [np.full((2, 3), 4.0, np.float32)]})  # fmt: skip
    x = torch.full((2, 1, 4, 3), -6.0)  # (L, B, T, D)
    x[:, :, 3] = 0.0  # a padded frame
    mask = torch.tensor([[True, True, True, False]])  # (B, T)
    (y,) = norm([x], mask)
    assert torch.equal(y[:, :, :3], torch.ones(2, 1, 3, 3))
    assert torch.equal(y[:, :, 3], torch.zeros(2, 1, 3))
    assert set(norm.state_dict()) == {"mean_0", "std_0"}
