"""The pooled shortcut: training on ``pooled/mean`` equals training on frames where it is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featcache.manifest import Manifest, Utterance
from featcache.pipelines.train import prepare, train
from featcache.testing.caches import write_cache
from featcache.train.config import TrainConfig
from featcache.train.data import Collate, FrameBatchSampler, to_float32


def _corpus(root, count=30, layers=4, dim=6, seed=0, offset=3.0):
    """Random frames whose mean depends on the label, with large offsets per dimension."""
    rng = np.random.default_rng(seed)
    utts, arrays = [], {}
    for i in range(count):
        uid = f"u{i:02d}"
        label = f"c{i % 3}"
        split = "train" if i < 18 else ("dev" if i < 24 else "test")
        utts.append(Utterance(id=uid, audio="x.wav", split=split, fields={"label": label}))
        frames = int(rng.integers(5, 40))
        x = rng.normal(size=(frames, layers, dim)) * rng.uniform(0.5, 4, size=(1, layers, dim))
        arrays[uid] = (x + offset + (i % 3)).astype(np.float32)  # (T, L, D)
    return Manifest(utts, root / "manifest.jsonl"), arrays


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("pooled")
    manifest, arrays = _corpus(root)
    write_cache(root / "cache", "up-a", arrays, manifest, 50.0)
    rng = np.random.default_rng(1)  # a second upstream with the same frame counts
    more = {u: (x[:, :3, :5] * 2 + rng.normal(size=x[:, :3, :5].shape)).astype(np.float32)
            for u, x in arrays.items()}  # fmt: skip
    write_cache(root / "cache", "up-b", more, manifest, 50.0)
    return root / "cache", arrays


def _config(cache_dir, out="", **kw):
    values = dict(cache=str(cache_dir), out=str(out), upstreams=["up-a"], label="label",
                  interface="ws", epochs=3, batch_frames=120, num_workers=0, device="cpu",
                  seed=3, patience=3)  # fmt: skip
    values.update(kw)
    return TrainConfig(**values)


def _loss_and_grads(parts, indices):
    model, task = parts["model"], parts["task"]
    model.zero_grad()
    dataset = parts["datasets"]["train"]
    batch = to_float32(Collate(task.collate)([dataset[i] for i in indices]))
    logits = model(batch["features"], batch["mask"])
    task.loss(logits, batch).backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), grads


@pytest.mark.parametrize("interface", ["ws", "last", "layer:2", "concat", "group-ws:2"])
@pytest.mark.parametrize("normalize", ["global", "none"])
def test_pooled_logits_and_gradients_equal_the_frame_path(cache, interface, normalize):
    cache_dir, _ = cache
    for upstreams in (["up-a"], ["up-a", "up-b"]):  # one model, and two of equal frame counts
        runs = {}
        for pooled in ("auto", "off"):
            cfg = _config(cache_dir, upstreams=upstreams, interface=interface,
                          normalize=normalize, pooled=pooled)  # fmt: skip
            parts = prepare(cfg, log=lambda s: None)
            if interface == "ws":  # non-uniform layer weights, so the weighting is exercised
                for p in parts["model"].interface.parameters():
                    if p.ndim == 1:
                        torch.nn.init.normal_(
                            p, std=1.0, generator=torch.Generator().manual_seed(0)
                        )
            runs[pooled] = (parts, _loss_and_grads(parts, [0, 3, 7, 11, 16]))
        assert runs["auto"][0]["data_path"]["source"] == "pooled"
        assert runs["off"][0]["data_path"] == {"source": "frames", "reason": "--pooled off"}
        (logits_p, grads_p), (logits_f, grads_f) = runs["auto"][1], runs["off"][1]
        torch.testing.assert_close(logits_p, logits_f, rtol=1e-5, atol=1e-5)
        assert grads_p.keys() == grads_f.keys() and grads_p
        for k in grads_p:
            torch.testing.assert_close(grads_p[k], grads_f[k], rtol=1e-4, atol=1e-6)
        # the standardisation statistics come from frames in both paths
        if normalize == "global":
            for k, v in runs["off"][0]["model"].normalize.state_dict().items():
                assert torch.equal(runs["auto"][0]["model"].normalize.state_dict()[k], v)


@pytest.mark.parametrize("loader", ["utterances", "blocks"])
def test_pooled_batches_cut_by_indexing_equal_collated_items(cache, loader):
    """The trainer's pooled loader (no DataLoader, no per-item collate) serves exactly the
    batches the collate path makes from the same plan, in the same order."""
    from featcache.train.distributed import Dist
    from featcache.train.loaders import build_loader

    cache_dir, _ = cache
    cfg = _config(cache_dir, upstreams=["up-a", "up-b"], loader=loader)
    parts = prepare(cfg, log=lambda s: None)
    dataset, task = parts["datasets"]["train"], parts["task"]
    built = build_loader(dataset, cfg, task.collate, True, False, Dist())
    for epoch in (0, 1):
        built.set_epoch(epoch, start=1)
        plan = built.sampler.batches
        plan = plan() if callable(plan) else plan
        batches = list(built)
        assert len(batches) == len(built) == len(plan) > 1
        for indices, batch in zip(plan, batches, strict=True):
            expected = Collate(task.collate)([dataset[i] for i in indices])
            assert batch["ids"] == expected["ids"]
            for key in ("lengths", "mask", "target"):
                assert torch.equal(batch[key], expected[key])
            for x, y in zip(batch["features"], expected["features"], strict=True):
                assert x.shape == y.shape and torch.equal(x, y)  # (L_i, B, 1, D_i)


def test_pooled_rows_are_the_masked_mean_of_the_stored_frames(cache):
    cache_dir, arrays = cache
    parts = prepare(_config(cache_dir), log=lambda s: None)
    dataset = parts["datasets"]["train"]
    for i, uid in enumerate(dataset.ids):
        np.testing.assert_allclose(dataset[i]["features"][0][0].numpy(),
                                   arrays[uid].mean(axis=0), rtol=1e-6, atol=1e-6)  # fmt: skip
        assert dataset.lengths[i] == len(arrays[uid])  # batches are cut from real frame counts


def test_a_pooled_run_ends_where_the_frame_run_ends(cache, tmp_path):
    cache_dir, _ = cache
    pooled = train(_config(cache_dir, tmp_path / "p"), log=lambda s: None)
    frames = train(_config(cache_dir, tmp_path / "f", pooled="off"), log=lambda s: None)
    assert pooled["data_path"]["source"] == "pooled"
    assert frames["data_path"]["source"] == "frames"
    assert pooled["steps"] == frames["steps"] and pooled["best"] == frames["best"]
    for split in ("dev", "test"):
        assert pooled["metrics"][split]["accuracy"] == frames["metrics"][split]["accuracy"]
    a = torch.load(tmp_path / "p" / "best.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "f" / "best.pt", weights_only=False)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("interface,reason", [("ws:ln", "not linear"), ("hconv", "not linear"),
                                              ("gumd", "not linear")])  # fmt: skip
def test_frames_are_read_where_pooling_is_not_exact(cache, interface, reason):
    cache_dir, _ = cache
    parts = prepare(_config(cache_dir, interface=interface), log=lambda s: None)
    assert parts["data_path"]["source"] == "frames"
    assert reason in parts["data_path"]["reason"]


def test_frames_are_read_when_upstreams_need_resampling(tmp_path):
    manifest, arrays = _corpus(tmp_path)
    write_cache(tmp_path / "cache", "fast", arrays, manifest, 50.0)
    slow = {u: x[::2] for u, x in arrays.items()}  # half the frame rate
    write_cache(tmp_path / "cache", "slow", slow, manifest, 25.0)
    cfg = _config(tmp_path / "cache", upstreams=["fast", "slow"])
    parts = prepare(cfg, log=lambda s: None)
    assert parts["data_path"]["source"] == "frames"
    assert "frame counts differ" in parts["data_path"]["reason"]


def test_float16_store_pooled_path_differs_only_by_float16_rounding(tmp_path):
    manifest, arrays = _corpus(tmp_path)
    write_cache(tmp_path / "cache", "half", arrays, manifest, 50.0, dtype="float16")
    out = {}
    for pooled in ("auto", "off"):
        parts = prepare(_config(tmp_path / "cache", upstreams=["half"], pooled=pooled),
                        log=lambda s: None)  # fmt: skip
        out[pooled] = _loss_and_grads(parts, list(range(18)))[0]
    scale = float(out["off"].abs().max())
    torch.testing.assert_close(out["auto"], out["off"], rtol=0, atol=2e-3 * scale)
    assert not torch.equal(out["auto"], out["off"])  # the store's means are not float16's


def test_sampler_cuts_the_same_batches_for_both_paths(cache):
    cache_dir, _ = cache
    a = prepare(_config(cache_dir), log=lambda s: None)["datasets"]["train"]
    b = prepare(_config(cache_dir, pooled="off"), log=lambda s: None)["datasets"]["train"]
    assert list(FrameBatchSampler(a.lengths, 120, True, seed=3)) == list(
        FrameBatchSampler(b.lengths, 120, True, seed=3)
    )
