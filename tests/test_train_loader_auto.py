"""``--loader auto``: decided by the cache alone, recorded in the run, kept on resume; and
``--cache-in-memory`` never changes the batches, whichever loader."""

from __future__ import annotations

import json

import pytest
import torch

from featcache.pipelines.train import resolve_data, train
from featcache.store import open_cache
from featcache.store.reader import CacheReader
from featcache.testing.caches import two_rate_caches
from featcache.train import loaders
from featcache.train.config import TrainConfig
from featcache.train.data import CachedDataset
from featcache.train.distributed import Dist
from featcache.train.loaders import AUTO_BLOCKS_BYTES, build_loader, choose_loader


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """60 utterances: ``a`` float16 Zarr (3 x 8), ``b`` float32 HDF5 (2 x 4) at twice the rate."""
    return two_rate_caches(tmp_path_factory.mktemp("auto"), seed=1)


def _config(cache, out, **kw):
    values = dict(cache=str(cache), out=str(out), upstreams=["a"], label="label",
                  interface="hconv", epochs=3, patience=3, batch_frames=300, num_workers=0,
                  device="cpu", progress=False)  # fmt: skip
    return TrainConfig(**{**values, **kw})


def _weights(run):
    return torch.load(run / "best.pt", weights_only=False)["model"]


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_choose_loader_reads_only_the_request_the_size_and_the_record():
    assert choose_loader("auto", AUTO_BLOCKS_BYTES - 1)["name"] == "utterances"
    assert choose_loader("auto", AUTO_BLOCKS_BYTES)["name"] == "blocks"
    assert choose_loader("blocks", 1.0)["name"] == "blocks"
    assert choose_loader("utterances", 10 * AUTO_BLOCKS_BYTES)["name"] == "utterances"
    kept = choose_loader("auto", 1.0, recorded="blocks")
    assert kept["name"] == "blocks" and "started with" in kept["reason"]


def test_train_bytes_are_the_train_frames_as_stored(corpus):
    cache, manifest, b = corpus
    config = _config(cache, "", upstreams=["a", "b"])
    data = resolve_data(config, lambda s: None)
    train_ids = [u.id for u in manifest if u.split == "train"]
    aligned = sum(b[u].shape[0] for u in train_ids)  # frames of the faster upstream
    assert data["train_bytes"] == aligned * (3 * 8 * 2 + 2 * 4 * 4)  # float16 a + float32 b


def test_auto_is_decided_by_the_cache_and_recorded(corpus, tmp_path, monkeypatch):
    cache = corpus[0]
    # the machine's free memory must not enter the choice (nor the batches)
    monkeypatch.setattr(loaders, "available_memory", lambda: 1.0)
    auto = train(_config(cache, tmp_path / "auto"), log=lambda s: None)
    explicit = train(_config(cache, tmp_path / "utts", loader="utterances"), log=lambda s: None)
    assert auto["loader"] == "utterances" and auto["loader_reason"].startswith("auto: train")
    assert auto["memory"]["held"] == []  # nothing fits a 0.5-byte budget: streamed
    identity = json.loads((tmp_path / "auto" / "identity.json").read_text())
    assert identity["options"]["loader"] == "utterances"
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["loader"] == "utterances"
    assert auto["metrics"] == explicit["metrics"] and auto["steps"] == explicit["steps"]
    assert _same_weights(_weights(tmp_path / "auto"), _weights(tmp_path / "utts"))
    # a train split above the threshold reads by blocks, the same run as --loader blocks
    monkeypatch.setattr(loaders, "AUTO_BLOCKS_BYTES", 1.0)
    big = train(_config(cache, tmp_path / "big"), log=lambda s: None)
    blocks = train(_config(cache, tmp_path / "blocks", loader="blocks"), log=lambda s: None)
    assert big["loader"] == "blocks" and big["metrics"] == blocks["metrics"]
    assert _same_weights(_weights(tmp_path / "big"), _weights(tmp_path / "blocks"))


class Stop(Exception):
    pass


def test_resume_with_auto_keeps_the_loader_the_run_started_with(corpus, tmp_path):
    cache = corpus[0]
    straight = train(_config(cache, tmp_path / "straight", loader="blocks"), log=lambda s: None)

    def stop_after_first_epoch(line):
        if line.startswith("epoch 1 "):  # logged after last.pt of epoch 1 is written
            raise Stop

    with pytest.raises(Stop):
        train(_config(cache, tmp_path / "cut", loader="blocks"), log=stop_after_first_epoch)
    assert not (tmp_path / "cut" / "summary.json").exists()
    lines = []
    # auto alone would choose utterances for this small cache; the run folder says blocks
    resumed = train(_config(cache, tmp_path / "cut"), log=lines.append)
    assert any(line.startswith("resuming ") for line in lines)
    assert resumed["loader"] == "blocks" and "started with" in resumed["loader_reason"]
    assert resumed["metrics"] == straight["metrics"] and resumed["steps"] == straight["steps"]
    assert _same_weights(_weights(tmp_path / "cut"), _weights(tmp_path / "straight"))


@pytest.mark.parametrize("loader", ["blocks", "utterances"])
def test_held_and_streamed_frames_give_identical_batches(corpus, loader):
    cache, manifest, _ = corpus
    readers = [CacheReader(open_cache(cache, u).path) for u in ("a", "b")]
    ids = [u.id for u in manifest if u.split == "train"]
    frames = {u: int(readers[1].num_frames[readers[1].index(u)]) for u in ids}
    targets = list(range(len(ids)))
    config = TrainConfig(cache=str(cache), loader=loader, batch_frames=300, num_workers=1)
    runs = {}
    for mode in ("streamed", "held"):
        dataset = CachedDataset(readers, ids, frames, targets, ["x"] * len(ids))
        if mode == "held":
            dataset.hold()
        collate = lambda t: {"target": torch.tensor(t)}  # noqa: E731
        built = build_loader(dataset, config, collate, True, False, Dist())
        batches = []
        for epoch in (0, 1):
            built.set_epoch(epoch)
            batches += [(b["ids"], b["target"], b["mask"], b["features"]) for b in built]
        runs[mode] = batches
    assert len(runs["streamed"]) == len(runs["held"]) > 4
    for (ids_s, t_s, m_s, f_s), (ids_h, t_h, m_h, f_h) in zip(*runs.values(), strict=True):
        assert ids_s == ids_h and torch.equal(t_s, t_h) and torch.equal(m_s, m_h)
        assert all(torch.equal(x, y) for x, y in zip(f_s, f_h, strict=True))
