"""The block loader: storage-order runs read at once, shuffled by blocks and in a bounded buffer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featcache.manifest import Manifest
from featcache.pipelines.train import train
from featcache.store import open_cache
from featcache.store.reader import CacheReader
from featcache.testing.caches import two_rate_caches, write_cache
from featcache.train.blocks import BlockLoader, WindowSampler, storage_blocks
from featcache.train.config import TrainConfig
from featcache.train.data import CachedDataset


class CountingReader(CacheReader):
    """A real reader that also counts its frame reads (how many calls a batch costs)."""

    calls = 0

    def read_frames(self, *args, **kwargs):
        CountingReader.calls += 1
        return super().read_frames(*args, **kwargs)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """60 utterances: ``a`` float16 Zarr (3 x 8), ``b`` float32 HDF5 (2 x 4) at twice the rate."""
    cache, manifest, _ = two_rate_caches(tmp_path_factory.mktemp("blocks"), seed=0)
    return cache, manifest


def _dataset(cache, manifest, reader_class=CacheReader, split="train"):
    readers = [reader_class(open_cache(cache, u).path) for u in ("a", "b")]
    ids = [u.id for u in manifest if u.split == split]
    frames = {u: int(readers[1].num_frames[readers[1].index(u)]) for u in ids}  # the fastest
    return CachedDataset(readers, ids, frames, [0] * len(ids), ["x"] * len(ids))


def _collect(loader):
    return [(b["ids"], [x.clone() for x in b["features"]]) for b in loader]


def test_every_utterance_once_per_epoch_and_epochs_differ(corpus):
    dataset = _dataset(*corpus)
    sampler = WindowSampler(dataset, 300, shuffle=True, seed=5, block_mb=0.003, buffer_blocks=2)
    assert len(storage_blocks(dataset, 0.003)) > 4  # several blocks, several windows
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = sampler.batches()
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(dataset)))  # exactly once
        for b in batches:  # the frame budget holds (a lone long utterance may exceed it)
            assert len(b) == 1 or len(b) * max(dataset.lengths[i] for i in b) <= 300
        orders.append(flat)
    assert orders[0] != orders[1] != orders[2]
    again = WindowSampler(dataset, 300, shuffle=True, seed=5, block_mb=0.003, buffer_blocks=2)
    again.set_epoch(1)
    sampler.set_epoch(1)
    assert again.batches() == sampler.batches()  # same seed, same batches
    other = WindowSampler(dataset, 300, shuffle=True, seed=6, block_mb=0.003, buffer_blocks=2)
    other.set_epoch(1)
    assert other.batches() != sampler.batches()


def test_batches_hold_the_readers_frames_whatever_the_worker_count(corpus):
    cache, manifest = corpus
    dataset = _dataset(cache, manifest)
    runs = {}
    for workers in (0, 2):
        loader = BlockLoader(dataset, 300, lambda t: {}, workers, True, 5, block_mb=0.003,
                             buffer_blocks=2)  # fmt: skip
        loader.set_epoch(2)
        runs[workers] = _collect(loader)
    assert [ids for ids, _ in runs[0]] == [ids for ids, _ in runs[2]]
    for (_, x0), (_, x2) in zip(runs[0], runs[2], strict=True):
        assert all(torch.equal(p, q) for p, q in zip(x0, x2, strict=True))
    # each utterance's padded frames are exactly what the per-utterance path gives
    reference = {dataset.ids[i]: dataset[i]["features"] for i in range(len(dataset))}
    for ids, features in runs[2]:
        for b, uid in enumerate(ids):
            for k, want in enumerate(reference[uid]):  # (T, L, D)
                got = features[k][:, b, : want.shape[0]].permute(1, 0, 2)
                assert torch.equal(got, want)
                assert not features[k][:, b, want.shape[0] :].any()  # padding is zero


def test_a_window_costs_one_read_per_upstream_part_and_run(corpus):
    cache, manifest = corpus
    dataset = _dataset(cache, manifest, CountingReader)
    loader = BlockLoader(dataset, 10_000, lambda t: {}, 0, True, 0, block_mb=64)  # one window
    CountingReader.calls = 0
    seen = sum(len(b["ids"]) for b in loader)
    assert seen == len(dataset)
    # train is 3 of every 5 utterances: dev/test gaps are shorter than a chunk, so one read per
    # part of each store (60 utterances: 9 parts of 7 in a, 6 parts of 11 in b)
    assert CountingReader.calls == 9 + 6
    CountingReader.calls = 0
    for i in range(len(dataset)):
        dataset[i]
    per_utterance = CountingReader.calls
    assert per_utterance == 2 * len(dataset)  # one per upstream and utterance


def test_held_in_memory_gives_the_same_batches_as_streaming(corpus):
    cache, manifest = corpus
    streamed = _dataset(cache, manifest)
    held = _dataset(cache, manifest)
    held.hold()
    assert held.in_memory and not streamed.in_memory
    out = []
    for dataset in (streamed, held):
        loader = BlockLoader(dataset, 300, lambda t: {}, 0, True, 1, block_mb=0.003)
        loader.set_epoch(3)
        out.append(_collect(loader))
    assert [ids for ids, _ in out[0]] == [ids for ids, _ in out[1]]
    for (_, x0), (_, x1) in zip(*out, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(x0, x1, strict=True))


def test_resume_mid_epoch_skips_exactly_the_consumed_batches(corpus):
    dataset = _dataset(*corpus)
    sampler = WindowSampler(dataset, 300, shuffle=True, seed=5, block_mb=0.003, buffer_blocks=2)
    sampler.set_epoch(4)
    full = sampler.batches()
    for start in (0, 1, 5, len(full) - 1, len(full)):
        sampler.set_epoch(4, start)
        assert sampler.batches() == full[start:]
        assert sampler.remaining == len(full) - start


@pytest.mark.parametrize("interface", ["hconv", "ws"])
def test_training_streamed_held_and_per_utterance(corpus, tmp_path, interface):
    """Streaming from disk and holding in memory train identically; the per-utterance loader
    (other batches) trains too."""
    cache, _ = corpus
    summaries = {}
    for name, loader, memory, workers in [("stream", "blocks", "off", 1),
                                          ("held", "blocks", "auto", 1),
                                          ("utts", "utterances", "off", 0)]:  # fmt: skip
        cfg = TrainConfig(cache=str(cache), out=str(tmp_path / name), upstreams=["a"],
                          label="label", interface=interface, epochs=2, batch_frames=300,
                          num_workers=workers, device="cpu", loader=loader,
                          cache_in_memory=memory, pooled="off")  # fmt: skip
        summaries[name] = train(cfg, log=lambda s: None)
    assert summaries["held"]["memory"]["held"] == ["train", "dev"]
    assert summaries["stream"]["memory"]["held"] == []
    assert summaries["stream"]["loader"] == "blocks"
    assert summaries["utts"]["loader"] == "utterances"
    assert summaries["stream"]["metrics"] == summaries["held"]["metrics"]
    a = torch.load(tmp_path / "stream" / "best.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "held" / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert summaries["utts"]["steps"] > 0


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_int8_stores_are_dequantised_on_block_reads(tmp_path, fmt):
    """Block reads go through CacheReader.read_frames, so int8 runs come back dequantised, equal
    to the per-utterance get(), across chunk boundaries and for a layer subset."""
    rng = np.random.default_rng(3)
    records = [{"id": f"u{i}", "audio": "x.wav", "label": f"c{i % 2}", "split": "train"}
               for i in range(12)]  # fmt: skip
    manifest = Manifest.from_records(records, tmp_path / "manifest.jsonl")
    arrays = {r["id"]: rng.normal(size=(int(rng.integers(300, 900)), 3, 8)).astype(np.float32)
              for r in records}  # fmt: skip
    write_cache(tmp_path / "cache", "q", arrays, manifest, format=fmt, dtype="int8", part_size=12)
    reader = open_cache(tmp_path / "cache", "q")
    ids = manifest.ids()
    frames = {u: int(reader.num_frames[reader.index(u)]) for u in ids}
    for layers in (None, [1, 2]):
        dataset = CachedDataset([reader], ids, frames, [0] * 12, ["x"] * 12, [layers])
        items = dataset.read_items(list(range(12)))
        for i, uid in enumerate(ids):
            want = reader.get(uid, layers=layers)  # (T, L, D) float32, dequantised
            assert items[i]["features"][0].dtype == torch.float32
            np.testing.assert_array_equal(items[i]["features"][0].numpy(), want)
            assert np.abs(want - arrays[uid][:, layers or slice(None)]).max() < 0.05
