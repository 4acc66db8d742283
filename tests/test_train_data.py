"""Streaming cached layers: joining caches by id, frame-budget batches, collation, workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featcache.errors import ConfigError
from featcache.manifest import Manifest
from featcache.store import open_cache
from featcache.testing.caches import write_cache
from featcache.train.data import (
    CachedDataset,
    Collate,
    FrameBatchSampler,
    join_caches,
    to_float32,
)


def _manifest(tmp_path, n=8):
    records = [
        {"id": f"u{i}", "audio": f"u{i}.wav", "speaker": f"s{i % 2}",
         "split": ("train", "train", "dev", "test")[i % 4]}
        for i in range(n)
    ]  # fmt: skip
    return Manifest.from_records(records, tmp_path / "manifest.jsonl")


@pytest.fixture
def two_caches(tmp_path):
    """A 50 frames/s 3-layer cache and a 100 frames/s 1-layer cache missing utterance u7."""
    manifest = _manifest(tmp_path)
    rng = np.random.default_rng(0)
    slow, fast = {}, {}
    for i, u in enumerate(manifest.ids()):
        t = 5 + i
        slow[u] = rng.standard_normal((t, 3, 4)).astype(np.float32)
        if u != "u7":
            # frame j of the fast model holds its own time, (j + 0.5) / 100
            ramp = ((np.arange(2 * t) + 0.5) / 100).astype(np.float32)
            fast[u] = np.repeat(ramp[:, None, None], 2, axis=2)
    cache = tmp_path / "cache"
    write_cache(cache, "slow", slow, manifest, frame_rate=50.0)
    write_cache(cache, "fast", fast, manifest, frame_rate=100.0, format="hdf5")
    return cache, manifest, slow


def test_join_reports_missing_utterances(two_caches):
    cache, manifest, _ = two_caches
    readers = [open_cache(cache, "slow"), open_cache(cache, "fast")]
    joined = join_caches(readers, manifest, "speaker")
    assert joined.missing == {"slow": [], "fast": ["u7"]}
    assert joined.ids == {"train": ["u0", "u1", "u4", "u5"], "dev": ["u2", "u6"], "test": ["u3"]}
    assert joined.frames["u2"] == 2 * (5 + 2)  # frames of the fastest upstream
    assert joined.report()["missing"] == {"fast": {"count": 1, "ids": ["u7"]}}
    (line,) = joined.warnings()
    assert "1 utterance(s) have no frames in the cache of fast" in line and "u7" in line
    with pytest.raises(ConfigError, match="label field 'emotion'"):
        join_caches(readers, manifest, "emotion")


def test_dataset_resamples_slow_upstream_and_collates(two_caches):
    cache, manifest, slow = two_caches
    readers = [open_cache(cache, "slow"), open_cache(cache, "fast")]
    joined = join_caches(readers, manifest, "speaker")
    ids = joined.ids["train"]
    data = CachedDataset(readers, ids, joined.frames, [0, 1, 0, 1], ["s0", "s1", "s0", "s1"])
    item = data[1]
    assert [x.shape for x in item["features"]] == [(12, 3, 4), (12, 1, 2)]
    # the slow model's frames, upsampled: frame 2k+1 sits a quarter of the way to frame k+1
    x = item["features"][0]
    torch.testing.assert_close(x[3], 0.75 * torch.from_numpy(slow["u1"][1]) + 0.25 * torch.from_numpy(slow["u1"][2]))  # fmt: skip
    batch = Collate(lambda t: {"target": torch.tensor(t)})([data[0], data[1]])
    assert batch["features"][0].shape == (3, 2, 12, 4)  # (L, B, T, D)
    assert batch["features"][1].shape == (1, 2, 12, 2)
    assert batch["lengths"].tolist() == [10, 12]
    assert batch["mask"].sum(1).tolist() == [10, 12]
    assert torch.all(batch["features"][0][:, 0, 10:] == 0)  # zero padding
    torch.testing.assert_close(batch["features"][1][0, 1, :, 0], (torch.arange(12) + 0.5) / 100)


def test_dataloader_workers_read_through_pickled_readers(two_caches):
    cache, manifest, _ = two_caches
    readers = [open_cache(cache, "slow"), open_cache(cache, "fast")]
    readers[0].get("u0")  # an open handle must not break pickling
    joined = join_caches(readers, manifest, "speaker")
    ids = joined.ids["train"]
    data = CachedDataset(readers, ids, joined.frames, [0] * 4, ["s0"] * 4)
    sampler = FrameBatchSampler(data.lengths, 30)
    collate = Collate(lambda t: {"target": torch.tensor(t)})
    with_workers = list(torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=collate,
                                                    num_workers=1))  # fmt: skip
    in_process = list(torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=collate))
    assert [b["ids"] for b in with_workers] == [b["ids"] for b in in_process]
    for a, b in zip(with_workers, in_process, strict=True):
        torch.testing.assert_close(a["features"][0], b["features"][0])


def test_frame_batches_respect_the_budget_and_are_reproducible():
    rng = np.random.default_rng(1)
    lengths = rng.integers(10, 200, size=100).tolist()
    sampler = FrameBatchSampler(lengths, 600, shuffle=True, seed=3, epoch=2)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(100))
    for b in batches:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 600
    again = list(FrameBatchSampler(lengths, 600, shuffle=True, seed=3, epoch=2))
    assert again == batches
    assert list(FrameBatchSampler(lengths, 600, shuffle=True, seed=3, epoch=3)) != batches
    # similar lengths share a batch (sorted buckets): spread within a batch is small
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert np.mean(spreads) < 20
    resumed = list(FrameBatchSampler(lengths, 600, shuffle=True, seed=3, epoch=2, start=4))
    assert resumed == batches[4:]
    assert FrameBatchSampler([1000], 10).batches == [[0]]  # too long: alone


def test_ranks_get_equal_disjoint_shares():
    lengths = list(range(10, 60))
    full = FrameBatchSampler(lengths, 100, shuffle=True, seed=0)
    shares = [FrameBatchSampler(lengths, 100, shuffle=True, seed=0, rank=r, world_size=3).batches
              for r in range(3)]  # fmt: skip
    assert len({len(s) for s in shares}) == 1
    seen = [tuple(b) for s in shares for b in s]
    assert set(seen) == {tuple(b) for b in full.batches}


@pytest.mark.parametrize("store_format", ["zarr", "hdf5"])
def test_float16_store_ships_float16_batches_that_cast_back_exactly(tmp_path, store_format):
    manifest = _manifest(tmp_path)
    rng = np.random.default_rng(2)
    arrays = {u: rng.standard_normal((6 + i, 2, 3)).astype(np.float32)
              for i, u in enumerate(manifest.ids())}  # fmt: skip
    cache = tmp_path / "cache"
    write_cache(cache, "half", arrays, manifest, format=store_format, dtype="float16")
    reader = open_cache(cache, "half")
    joined = join_caches([reader], manifest, "speaker")
    ids = joined.ids["train"]
    data = CachedDataset([reader], ids, joined.frames, [0, 1, 0, 1], ["s0", "s1", "s0", "s1"])
    assert data[0]["features"][0].dtype == torch.float16
    sampler = FrameBatchSampler(data.lengths, 100)
    collate = Collate(lambda t: {"target": torch.tensor(t)})
    (batch,) = list(torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=collate,
                                                num_workers=1))  # fmt: skip
    assert batch["features"][0].dtype == torch.float16
    features = to_float32(batch)["features"][0]  # (L, B, T, D)
    assert features.dtype == torch.float32
    for b, utt in enumerate(batch["ids"]):
        stored = torch.from_numpy(reader.get(utt))  # float32 (T, L, D)
        t = stored.shape[0]
        assert torch.equal(features[:, b, :t], stored.permute(1, 0, 2))  # bit-identical
        assert torch.all(features[:, b, t:] == 0)
    one_layer = CachedDataset([reader], ids, joined.frames, [0] * 4, ["s0"] * 4, [[1]])
    x = one_layer[2]["features"][0]  # (T, 1, D)
    assert x.dtype == torch.float16
    assert torch.equal(x.float(), torch.from_numpy(reader.get(ids[2], layers=[1])))
