"""Scale-out with dask.distributed: 2 local workers, or an existing cluster, equal one process."""

from __future__ import annotations

import os

import numpy as np
import pytest

from featcache.pipelines.extract import ExtractConfig, extract
from featcache.store import get_backend
from featcache.testing.corpus import make_noise_corpus

UPSTREAM = "random:tiny-hubert"
# fbank needs no transformers import in the workers: the second cluster starts faster
FAST = "fbank"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    lengths = [0.4 + 0.1 * (i % 3) for i in range(8)]
    return make_noise_corpus(tmp_path_factory.mktemp("corpus"), lengths, seed=0)


@pytest.fixture(scope="module")
def one_process(corpus, tmp_path_factory):
    """The reference: the same extraction in this process, no dask."""
    cache = tmp_path_factory.mktemp("one")
    cfg = ExtractConfig(corpus, [UPSTREAM, FAST], cache, device="cpu", part_size=2, threads=1,
                        progress=False)  # fmt: skip
    stores = extract(cfg).stores
    return {name: _read(s.path) for name, s in zip((UPSTREAM, FAST), stores, strict=True)}


def _read(path):
    """Plain zarr or h5py read of the arrays of a store (contract paths)."""
    if path.suffix == ".zarr":
        import zarr

        g = zarr.open_group(str(path), mode="r")
        ids = [str(u) for u in g["utt_id"][:]]
        get = lambda name: g[name][:]  # noqa: E731
    else:
        import h5py
        import hdf5plugin  # noqa: F401

        f = h5py.File(path, "r")
        ids = list(f["utt_id"].asstr()[:])
        get = lambda name: f[name][:]  # noqa: E731
    part, off, n = get("part"), get("offset"), get("num_frames")
    frames = {u: get(f"parts/{part[i]}/frames")[off[i] : off[i] + n[i]] for i, u in enumerate(ids)}
    if attrs_dtype(path) == "int8":  # the scales too
        frames.update({f"scale/{k}": get(f"parts/{k}/scale") for k in sorted(set(part))})
    return {"ids": ids, "frames": frames, "pooled": get("pooled/mean"), "part": part}


def attrs_dtype(path):
    return get_backend("zarr" if path.suffix == ".zarr" else "hdf5").read_attrs(path)["dtype"]


def _assert_same(a, b):
    assert a["ids"] == b["ids"]
    np.testing.assert_array_equal(a["part"], b["part"])
    assert list(a["frames"]) == list(b["frames"])
    for u in a["frames"]:
        np.testing.assert_array_equal(a["frames"][u], b["frames"][u])
    np.testing.assert_array_equal(a["pooled"], b["pooled"])


def _writers(path):
    """pid of the process that wrote each part."""
    done = get_backend("zarr" if path.suffix == ".zarr" else "hdf5").complete_parts(path)
    return {k: m.writer["pid"] for k, m in done.items()}


@pytest.mark.slow
def test_two_local_workers_equal_one_process(corpus, one_process, tmp_path):
    cfg = ExtractConfig(corpus, [UPSTREAM], tmp_path, device="cpu", part_size=2, workers=2,
                        threads=1, progress=False)  # fmt: skip
    summary = extract(cfg).stores[0]
    assert summary.parts_computed == 4 and summary.num_utterances == 8
    _assert_same(_read(summary.path), one_process[UPSTREAM])
    writers = _writers(summary.path)
    assert sorted(writers) == [0, 1, 2, 3] and os.getpid() not in writers.values()


@pytest.mark.slow
def test_existing_cluster_via_scheduler_address(corpus, one_process, tmp_path):
    """Join a running scheduler by address (here a thread-based cluster: no worker start-up)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:  # fmt: skip
        cfg = ExtractConfig(corpus, [FAST], tmp_path, format="hdf5", device="cpu", threads=1,
                            part_size=2, scheduler=cluster.scheduler_address, progress=False)  # fmt: skip
        summary = extract(cfg).stores[0]
        worker_names = set(cluster.workers)
    assert summary.path.suffix == ".h5" and summary.parts_computed == 4
    _assert_same(_read(summary.path), one_process[FAST])
    assert len(worker_names) == 2


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_int8_workers_write_the_same_bytes_as_one_process(corpus, tmp_path, fmt):
    """int8 scales are per chunk of each part: the same whatever process writes the part."""
    from distributed import LocalCluster

    cfg = dict(format=fmt, dtype="int8", device="cpu", threads=1, part_size=3, progress=False)
    alone = extract(ExtractConfig(corpus, [FAST], tmp_path / "one", **cfg)).stores[0]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:  # fmt: skip
        spread = ExtractConfig(corpus, [FAST], tmp_path / "two", scheduler=cluster.scheduler_address,
                               **cfg)  # fmt: skip
        summary = extract(spread).stores[0]
    assert summary.parts_computed == 3
    a, b = _read(alone.path), _read(summary.path)
    assert sum(k.startswith("scale/") for k in a["frames"]) == 3
    _assert_same(a, b)
