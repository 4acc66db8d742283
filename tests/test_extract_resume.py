"""Crash safety and manifest changes: SIGKILL mid-run, resume, compare with a clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from featcache.errors import StoreError
from featcache.pipelines.extract import ExtractConfig, extract

SR = 16000
UPSTREAM = "fbank"  # no transformers import: the subprocess starts fast
STORE = "fbank.zarr"


def _corpus(root: Path, n: int, seed=0, seconds=0.3) -> Path:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        wav = 0.1 * rng.standard_normal(int(SR * (seconds + 0.05 * i)))
        sf.write(root / f"u{i:02d}.wav", wav.astype(np.float32), SR)
        records.append({"id": f"u{i:02d}", "audio": f"u{i:02d}.wav"})
    manifest = root / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    return manifest


def _read(store: Path) -> dict:
    import zarr

    g = zarr.open_group(str(store), mode="r")
    ids, part, off, n = g["utt_id"][:], g["part"][:], g["offset"][:], g["num_frames"][:]
    frames = {
        str(u): g[f"parts/{part[i]}/frames"][off[i] : off[i] + n[i]] for i, u in enumerate(ids)
    }
    scale = {k: g[f"parts/{k}/scale"][:] for k in map(str, set(part)) if f"parts/{k}/scale" in g}
    return {"frames": frames, "pooled": g["pooled/mean"][:], "part": part, "offset": off,
            "scale": scale}  # fmt: skip


def _snapshot(part_dir: Path) -> dict:
    """(inode, mtime_ns, ctime_ns) of every file of a part: unchanged iff never rewritten."""
    out = {}
    for root, _, files in os.walk(part_dir):
        for f in files:
            st = os.stat(os.path.join(root, f))
            out[os.path.join(root, f)] = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    return out


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_sigkill_then_resume_equals_clean_run(tmp_path, dtype):
    manifest = _corpus(tmp_path, 16, seconds=20.0)  # ~50 ms per part: time to kill mid-run
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "featcache.cli.main", "extract", str(manifest), "-u", UPSTREAM,
           "--cache", str(cache), "--part-size", "1", "--device", "cpu", "--no-progress", "--dtype", dtype]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    parts = cache / STORE / "parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and sum(p.name.isdigit() for p in parts.iterdir()) >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "extract finished before it could be killed"
    done = sorted(p.name for p in parts.iterdir() if p.name.isdigit())
    assert 3 <= len(done) < 16
    before = {k: _snapshot(parts / k) for k in done}

    result = extract(ExtractConfig(manifest, [UPSTREAM], cache, device="cpu", part_size=1,
                                   dtype=dtype, progress=False))  # fmt: skip
    summary = result.stores[0]
    assert summary.parts_reused >= len(done) and summary.parts_computed == 16 - summary.parts_reused
    assert {k: _snapshot(parts / k) for k in done} == before  # complete parts not recomputed
    assert not (cache / f"{STORE}.work").exists()

    clean = extract(ExtractConfig(manifest, [UPSTREAM], tmp_path / "clean", device="cpu",
                                  part_size=1, dtype=dtype, progress=False))  # fmt: skip
    a, b = _read(cache / STORE), _read(clean.stores[0].path)
    assert list(a["frames"]) == list(b["frames"]) == [f"u{i:02d}" for i in range(16)]
    for u in a["frames"]:
        np.testing.assert_array_equal(a["frames"][u], b["frames"][u])
    np.testing.assert_array_equal(a["pooled"], b["pooled"])
    np.testing.assert_array_equal(a["part"], b["part"])
    np.testing.assert_array_equal(a["offset"], b["offset"])
    assert (
        sorted(a["scale"])
        == sorted(b["scale"])
        == (sorted(map(str, range(16))) if dtype == "int8" else [])
    )
    for k in a["scale"]:
        np.testing.assert_array_equal(a["scale"][k], b["scale"][k])


def test_changed_manifest_never_mixes(tmp_path):
    manifest = _corpus(tmp_path, 5)
    cache = tmp_path / "cache"
    cfg = dict(upstreams=["fbank"], cache=cache, device="cpu", part_size=2, progress=False)
    extract(ExtractConfig(manifest, **cfg))
    store = cache / "fbank.zarr"
    before = {k: _snapshot(store / "parts" / k) for k in ("0", "1", "2")}

    # added utterances: appended as new parts, old parts untouched, index in manifest order
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    grown = tmp_path / "grown.jsonl"
    extra = {"id": "new", "audio": "u00.wav", "start": 0.1}
    grown.write_text("".join(json.dumps(r) + "\n" for r in [extra, *records]))
    summary = extract(ExtractConfig(grown, **cfg)).stores[0]
    assert summary.parts_computed == 1 and summary.parts_reused == 3
    assert {k: _snapshot(store / "parts" / k) for k in before} == before
    got = _read(store)
    assert list(got["frames"]) == ["new", "u00", "u01", "u02", "u03", "u04"]
    assert got["part"][0] == 3
    assert (cache / "manifest.jsonl").read_bytes().count(b"\n") == 6

    # a changed or removed utterance is refused with what differs
    changed = tmp_path / "changed.jsonl"
    records[1]["start"] = 0.05
    changed.write_text("".join(json.dumps(r) + "\n" for r in [extra, *records]))
    with pytest.raises(StoreError, match=r"1 changed, e.g. 'u01' \(line 3: start\).*--overwrite"):
        extract(ExtractConfig(changed, **cfg))
    with pytest.raises(StoreError, match="1 removed, e.g. 'new'"):
        extract(ExtractConfig(manifest, **cfg))
    # --overwrite rebuilds, but never leaves another store of the cache stale
    from featcache.manifest import Manifest
    from featcache.testing.caches import write_cache

    old = Manifest.load(cache / "manifest.jsonl")
    write_cache(cache, "other", {u: np.zeros((2, 1, 3), np.float32) for u in old.ids()}, old)
    with pytest.raises(StoreError, match="store\\(s\\) other --overwrite would leave stale"):
        extract(ExtractConfig(changed, **{**cfg, "overwrite": True}))
    summary = extract(ExtractConfig(grown, **cfg)).stores[0]
    assert summary.parts_computed == 0  # nothing to do
    with pytest.raises(StoreError, match="would leave stale"):
        extract(ExtractConfig(changed, **{**cfg, "overwrite": True}))
    import shutil

    shutil.rmtree(cache / "other.zarr")
    summary = extract(ExtractConfig(changed, **{**cfg, "overwrite": True})).stores[0]
    assert summary.parts_reused == 0 and summary.num_utterances == 6
