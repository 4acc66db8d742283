"""extract checks everything before it writes; label-only and order-only manifest changes keep
the stores; one writer per cache folder; a bad --scheduler is one line and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from featcache.errors import LockedError, UpstreamError
from featcache.pipelines.extract import ExtractConfig, extract, resolve_paths
from featcache.store import open_cache
from featcache.store.lock import LEASE, CacheLock
from featcache.testing.caches import extracted_cache, read_all_arrays, run_cli
from featcache.testing.corpus import make_tone_corpus


def _extract(manifest, cache, upstreams=("fbank",), **kw):
    return extract(ExtractConfig(manifest=manifest, upstreams=list(upstreams), cache=cache,
                                 part_size=2, progress=False, **kw))  # fmt: skip


def _tree(folder):
    """(mtime_ns, size) of every file under ``folder``: equal iff nothing was written."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            st = os.stat(os.path.join(root, f))
            out[os.path.join(root, f)] = (st.st_mtime_ns, st.st_size)
    return out


def _rows(manifest):
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def _write(rows, path):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cli(capsys, *argv):
    code = run_cli(*argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def built(tmp_path):
    manifest, caches = extracted_cache(tmp_path)  # fbank, 6 utterances, parts of 2
    return manifest, caches["zarr"]


def test_a_failed_extract_writes_nothing(built, tmp_path):
    manifest, cache = built
    rows = _rows(manifest)
    grown = _write([*rows, {**rows[0], "id": "extra"}], manifest.parent / "grown.jsonl")
    before = _tree(cache)
    with pytest.raises(UpstreamError):
        _extract(grown, cache, upstreams=("fbank", "no-such-model-xyz"))
    assert _tree(cache) == before
    assert _extract(manifest, cache).stores[0].parts_computed == 0  # the original still works


def test_label_only_change_updates_the_copy_and_keeps_the_stores(built):
    manifest, cache = built
    store = cache / "fbank.zarr"
    parts_before = _tree(store / "parts")
    rows = [{**r, "label": r["label"] + "-renamed", "split": "train"} for r in _rows(manifest)]
    relabelled = _write(rows, manifest.parent / "relabelled.jsonl")
    summary = _extract(relabelled, cache).stores[0]
    assert (summary.parts_computed, summary.parts_reused) == (0, 3)
    assert _tree(store / "parts") == parts_before
    assert [r["label"] for r in _rows(cache / "manifest.jsonl")] == [r["label"] for r in rows]
    assert open_cache(store).attrs["manifest_sha256"] == open_cache(store).manifest().sha256()


def test_the_index_follows_a_reordered_manifest(built):
    manifest, cache = built
    store = cache / "fbank.zarr"
    reader = open_cache(store)
    frames = {u: reader.get(u) for u in reader.utterances}
    reordered = _write(_rows(manifest)[::-1], manifest.parent / "reordered.jsonl")
    assert _extract(reordered, cache).stores[0].parts_computed == 0
    reader = open_cache(store)
    assert reader.utterances == [r["id"] for r in _rows(reordered)]
    assert [r["id"] for r in _rows(cache / "manifest.jsonl")] == reader.utterances
    for u in reader.utterances:
        assert np.array_equal(reader.get(u), frames[u])


HOLD = """
import sys, time
from featcache.store.lock import CacheLock
with CacheLock(sys.argv[1], "featcache extract (the other one)"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_stops_at_once_naming_the_other_process(built, capsys):
    manifest, cache = built
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(cache)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = _tree(cache)
        started = time.perf_counter()
        code, _, err = _cli(capsys, "extract", manifest, "-u", "fbank", "--cache", cache)
        assert time.perf_counter() - started < 5
        assert code == 1 and len(err.strip().splitlines()) == 1
        assert f"process {holder.pid} on host" in err and "being written" in err
        assert _tree(cache) == before
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert _extract(manifest, cache).stores[0].parts_computed == 0  # lock of the dead is free


def test_a_stale_lease_is_taken_over_and_a_live_remote_one_respected(built):
    manifest, cache = built
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    import socket

    lease = {"host": socket.gethostname(), "pid": int(dead), "command": "x", "since": "then",
             "renewed": 0}  # fmt: skip
    (cache / LEASE).write_text(json.dumps(lease))
    assert _extract(manifest, cache).stores[0].num_utterances == 6
    remote = {**lease, "host": "another-node", "renewed": time.time()}
    (cache / LEASE).write_text(json.dumps(remote))
    with pytest.raises(LockedError, match="on host another-node"):
        CacheLock(cache).acquire()
    (cache / LEASE).write_text(json.dumps({**remote, "renewed": time.time() - 3600}))
    with CacheLock(cache):
        pass


@pytest.mark.parametrize(
    "address, message",
    [("garbage!", "not a dask scheduler address"), ("http://localhost:8787", "web (dashboard)"),
     ("tcp://127.0.0.1:9", "no dask scheduler answered")],
)  # fmt: skip
def test_a_bad_scheduler_is_one_line_and_writes_nothing(tmp_path, capsys, address, message):
    manifest = make_tone_corpus(tmp_path / "corpus", utterances=2).path
    cache = tmp_path / "cache"
    started = time.perf_counter()
    code, _, err = _cli(capsys, "extract", manifest, "-u", "fbank", "--cache", cache,
                        "--scheduler", address)  # fmt: skip
    assert time.perf_counter() - started < 25
    assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert message in err
    assert not cache.exists()


def test_paths_sent_to_workers_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = resolve_paths(ExtractConfig(manifest="m.jsonl", upstreams=["fbank"], cache="rel"))
    assert config.cache == tmp_path / "rel" and config.manifest == tmp_path / "m.jsonl"


@pytest.mark.slow
def test_two_workers_equal_one_process_without_a_threads_flag(tmp_path):
    import torch

    manifest = make_tone_corpus(tmp_path / "corpus", utterances=4).path
    torch.set_num_threads(2)  # as a user's process has: more than one thread
    one = _extract(manifest, tmp_path / "one", upstreams=("random:tiny-hubert",))
    two = _extract(manifest, tmp_path / "two", upstreams=("random:tiny-hubert",), workers=2)
    a, b = read_all_arrays(one.stores[0].path), read_all_arrays(two.stores[0].path)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert open_cache(two.stores[0].path).attrs["torch_threads"] == 2


def test_a_cache_folder_some_worker_cannot_see_is_refused(tmp_path):
    from distributed import Client, LocalCluster

    from featcache.errors import ConfigError
    from featcache.pipelines.extract import check_workers_see

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:  # fmt: skip
        check_workers_see(client, tmp_path)
        with pytest.raises(ConfigError, match="cannot see this folder"):
            check_workers_see(client, tmp_path / "only-on-the-driver")


def test_a_scheduler_address_where_something_else_answers_is_one_line(tmp_path, capsys):
    """A port where another program answers with bytes that are not dask's protocol."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer():
        for _ in range(8):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(b"\x7f" * 64 + b"HTTP/1.1 400 Bad Request\r\n\r\n")
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    manifest = make_tone_corpus(tmp_path / "corpus", utterances=2).path
    try:
        code, _, err = _cli(capsys, "extract", manifest, "-u", "fbank", "--cache",
                            tmp_path / "cache", "--scheduler",
                            f"tcp://127.0.0.1:{server.getsockname()[1]}")  # fmt: skip
    finally:
        server.close()
    assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "cache").exists()
