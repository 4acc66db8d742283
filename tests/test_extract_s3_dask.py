"""Scale-out into a bucket: 2 dask worker processes, one SIGKILLed mid-part, then a rerun.

The cache must come out with the arrays of a single-process extraction into a local folder,
and train/probe must then run from the bucket with the local folder's results.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from featcache.cli.main import main
from featcache.errors import StoreError
from featcache.pipelines.extract import ExtractConfig, extract
from featcache.store import get_backend
from featcache.store.location import RemoteDir
from featcache.testing.corpus import make_noise_corpus

UPSTREAM = "fbank"  # no transformers import: workers (and the restarted one) start fast
STORE = "fbank.zarr"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    lengths = [0.4 + 0.1 * (i % 3) for i in range(10)]
    return make_noise_corpus(tmp_path_factory.mktemp("corpus"), lengths, seed=1, speakers=2,
                             splits=("train", "train", "dev", "test", "train"))  # fmt: skip


def _config(corpus, cache, **kw):
    return ExtractConfig(corpus, [UPSTREAM], cache, device="cpu", part_size=2, threads=1,
                         progress=False, **kw)  # fmt: skip


def _arrays(store, storage_options=None):
    import zarr

    g = zarr.open_group(str(store), mode="r", storage_options=storage_options)
    part, off, n = g["part"][:], g["offset"][:], g["num_frames"][:]
    ids = [str(u) for u in g["utt_id"][:]]
    frames = [g[f"parts/{part[i]}/frames"][off[i] : off[i] + n[i]] for i in range(len(ids))]
    return ids, part, frames, g["pooled/mean"][:]


@pytest.mark.slow
def test_worker_killed_mid_part_then_rerun_equals_one_process(corpus, s3, tmp_path):
    import dask
    from distributed import Client, LocalCluster

    from featcache.testing.cluster import KillMidPart

    local = tmp_path / "local"
    extract(_config(corpus, local))  # the reference: one process, a local folder
    url = f"{s3.bucket}/cache"
    once = tmp_path / "killed"
    # a task on a dead worker fails at once (no retry), as a pre-empted cluster job would
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
        client.register_plugin(KillMidPart(f"{url}/{STORE}", str(once)))
        with pytest.raises(StoreError, match="rerun the same command"):
            extract(_config(corpus, url, scheduler=cluster.scheduler_address))
        victim, half = (int(x) for x in once.read_text().split())
        store = RemoteDir(f"{url}/{STORE}")
        done = get_backend("zarr").complete_parts(store)
        assert half not in done and 0 < len(done) < 5  # killed mid-run, mid-part
        assert store.fs.exists(f"{store.path}/parts/{half}/frames/zarr.json")  # half written
        again = extract(_config(corpus, url, scheduler=cluster.scheduler_address)).stores[0]
    assert again.parts_reused == len(done) and again.parts_computed == 5 - len(done)
    writers = {k: m.writer["pid"] for k, m in get_backend("zarr").complete_parts(store).items()}
    assert sorted(writers) == [0, 1, 2, 3, 4] and os.getpid() not in writers.values()
    assert writers[half] != victim
    ids, part, frames, pooled = _arrays(f"{url}/{STORE}", s3.storage_options)
    ids_l, part_l, frames_l, pooled_l = _arrays(local / STORE)
    assert ids == ids_l and part.tolist() == part_l.tolist()
    for a, b in zip(frames, frames_l, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pooled, pooled_l)
    # then train and probe from the bucket: the same results as from the local folder
    for where, cache in (("bucket", url), ("local", str(local))):
        main(["train", "--cache", cache, "--label", "spk", "--interface", "ws", "--epochs", "1",
              "--num-workers", "0", "--device", "cpu", "--out", str(tmp_path / where)])  # fmt: skip
        main(["probe", "--cache", cache, "--label", "spk", "--cv", "2",
              "--out", str(tmp_path / f"probe-{where}")])  # fmt: skip
    runs = [json.loads((tmp_path / w / "summary.json").read_text()) for w in ("bucket", "local")]
    assert runs[0]["metrics"] == runs[1]["metrics"]
    probes = [json.loads((tmp_path / f"probe-{w}" / "probe.json").read_text())["results"]
              for w in ("bucket", "local")]  # fmt: skip
    assert probes[0] == probes[1]
