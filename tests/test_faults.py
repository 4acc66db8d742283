"""Fault injection through the real CLI in a subprocess: SIGKILL at exact calls, a full disk
(ENOSPC from a patched write), a damaged chunk, a concurrent second writer. Each asserts the
exit code, a one-line message, no temporary file left, and a rerun equal to a clean run."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from featcache.pipelines.extract import ExtractConfig, extract
from featcache.testing.caches import read_all_arrays
from featcache.testing.corpus import make_tone_corpus

STORES = {"zarr": "fbank.zarr", "hdf5": "fbank.h5"}


def _featcache(*args, fault=None, **kw):
    """The CLI in a fresh process, with ``fault`` (featcache.testing.faults spec) installed."""
    head = ["-m", "featcache.testing.faults", fault] if fault else ["-m", "featcache.cli.main"]
    return subprocess.run([sys.executable, *head, *map(str, args)], capture_output=True,
                          text=True, timeout=300, **kw)  # fmt: skip


def _extract_args(manifest, cache, format):
    return ["extract", manifest, "-u", "fbank", "--cache", cache, "--format", format,
            "--part-size", "2", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    manifest = make_tone_corpus(root / "corpus", utterances=12).path  # 12: with a dev split
    stores = {}
    for format in STORES:
        config = ExtractConfig(manifest=manifest, upstreams=["fbank"], cache=root / format,
                               format=format, part_size=2, progress=False)  # fmt: skip
        stores[format] = read_all_arrays(extract(config).stores[0].path)
    return manifest, stores


def _assert_clean(store, want):
    got = read_all_arrays(store)
    assert got.keys() == want.keys()
    for key in want:
        assert np.array_equal(got[key], want[key]), key


def _leftovers(cache):
    """Temporary files of any writer: part temporaries, zarr/h5 partial files, checkpoints."""
    patterns = ("**/tmp-*", "**/*.partial", "**/*.tmp*", "**/assemble-*", "**/.*.tmp*")
    return sorted({str(p) for pattern in patterns for p in cache.glob(pattern)})


def _one_line(done):
    err = done.stderr.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return err


KILLS = [
    ("zarr", "featcache.store.zarr_part:ZarrPartSink.commit:2:kill"),
    ("zarr", "featcache.store.builder:StoreBuilder.finalize:1:kill"),
    ("hdf5", "featcache.store.hdf5_part:HDF5PartSink.write:3:kill"),
    ("hdf5", "featcache.store.hdf5:HDF5Backend.finalize:1:kill"),
]


@pytest.mark.parametrize("format, fault", KILLS)
def test_sigkill_at_a_chosen_call_then_rerun_equals_clean(clean, tmp_path, format, fault):
    manifest, want = clean
    cache = tmp_path / "cache"
    killed = _featcache(*_extract_args(manifest, cache, format), fault=fault)
    assert killed.returncode == -9
    rerun = _featcache(*_extract_args(manifest, cache, format))
    assert rerun.returncode == 0, rerun.stderr
    _assert_clean(cache / STORES[format], want[format])
    assert _leftovers(cache) == []


ENOSPC = [
    ("zarr", "zarr.storage._local:_put:6:enospc"),
    ("hdf5", "h5py._hl.dataset:Dataset.__setitem__:3:enospc"),
]


@pytest.mark.parametrize("format, fault", ENOSPC)
def test_a_full_disk_is_one_line_leaves_no_temporary_file_and_resumes(
    clean, tmp_path, format, fault
):
    manifest, want = clean
    cache = tmp_path / "cache"
    full = _featcache(*_extract_args(manifest, cache, format), fault=fault)
    assert full.returncode == 1
    assert "no space left on the device" in _one_line(full)
    assert _leftovers(cache) == []
    rerun = _featcache(*_extract_args(manifest, cache, format))
    assert rerun.returncode == 0, rerun.stderr
    _assert_clean(cache / STORES[format], want[format])


def test_a_full_disk_during_a_checkpoint_write_resumes_to_the_clean_result(tmp_path):
    from featcache.testing.planted import write_planted_cache

    cache = write_planted_cache(tmp_path / "cache")
    args = ["train", "--cache", cache, "-u", "ssl-a", "--epochs", "3", "--num-workers", "0",
            "--device", "cpu", "--no-progress"]  # fmt: skip
    clean = _featcache(*args, "--out", tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    run = tmp_path / "run"
    full = _featcache(*args, "--out", run, fault="featcache.train.checkpoint:_write_bytes:3:enospc")
    assert full.returncode == 1
    assert "last.pt: no space left" in _one_line(full) or "best.pt: no space" in full.stderr
    assert _leftovers(run) == []
    again = _featcache(*args, "--out", run)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout
    result = lambda out: [line for line in out.splitlines() if line.startswith("results:")]  # noqa: E731
    assert result(again.stdout) == result(clean.stdout)


def test_a_deleted_chunk_is_one_line_then_verify_repair_and_rerun_equal_clean(clean, tmp_path):
    manifest, want = clean
    cache = tmp_path / "cache"
    assert _featcache(*_extract_args(manifest, cache, "zarr")).returncode == 0
    (cache / "fbank.zarr" / "parts" / "1" / "frames" / "c" / "0" / "0" / "0").unlink()
    frames_read = _featcache("train", "--cache", cache, "--label", "label", "--interface", "hconv",
                             "--epochs", "1", "--num-workers", "0", "--no-progress",
                             "--out", tmp_path / "r")  # fmt: skip
    assert frames_read.returncode == 1
    assert "fbank.zarr: part 1, frames 0-" in _one_line(frames_read)
    verify = _featcache("verify", cache)
    assert verify.returncode == 2 and "DAMAGED part 1" in verify.stdout
    assert _featcache("verify", cache, "--repair").returncode == 0
    rerun = _featcache(*_extract_args(manifest, cache, "zarr"))
    assert rerun.returncode == 0, rerun.stderr
    _assert_clean(cache / "fbank.zarr", want["zarr"])


def test_a_concurrent_second_extract_stops_at_once_and_the_first_resumes(clean, tmp_path):
    manifest, want = clean
    cache = tmp_path / "cache"
    args = [str(a) for a in _extract_args(manifest, cache, "zarr")]
    first = subprocess.Popen(
        [sys.executable, "-m", "featcache.testing.faults",
         "featcache.store.zarr_part:ZarrPartSink.commit:2:pause", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert first.stdout.readline().strip() == "paused"
        second = _featcache(*args)
        assert second.returncode == 1
        assert f"process {first.pid} on host" in _one_line(second)
    finally:
        first.kill()
        first.wait()
        first.stdout.close()
    rerun = _featcache(*args)
    assert rerun.returncode == 0, rerun.stderr
    _assert_clean(cache / "fbank.zarr", want["zarr"])
    assert _leftovers(cache) == []


@pytest.fixture()
def small_disk(tmp_path):
    """Mount a small tmpfs (root only) and return a function setting its size in KiB."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode:  # fmt: skip
        pytest.skip("cannot mount a tmpfs here (needs root): the patched-write tests cover ENOSPC")

    def resize(kib):
        subprocess.run(["mount", "-o", f"remount,size={kib}k", str(mnt)], check=True)

    yield mnt, resize
    subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("format", STORES)
def test_a_really_full_disk_with_several_layers_in_flight(tmp_path, small_disk, format):
    """A real full disk: zarr's sibling chunk writes and h5py's failing flush are the traps."""
    mnt, resize = small_disk
    manifest = make_tone_corpus(tmp_path / "corpus", utterances=8).path
    args = ["extract", manifest, "-u", "random:tiny-hubert", "--format", format,
            "--part-size", "2", "--threads", "1", "--no-progress"]  # fmt: skip
    clean = _featcache(*args, "--cache", tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    store = STORES[format].replace("fbank", "random-tiny-hubert")
    size = sum(p.stat().st_size for p in (tmp_path / "clean").rglob("*") if p.is_file())
    resize(max(64, size // 2048))  # half of what the store needs, in KiB
    full = _featcache(*args, "--cache", mnt / "cache")
    assert full.returncode == 1, full.stderr  # not a crash (h5py segfaulted after a failed flush)
    assert "no space left on the device" in _one_line(full)
    assert _leftovers(mnt / "cache") == []
    resize(64 * 1024)
    again = _featcache(*args, "--cache", mnt / "cache")
    assert again.returncode == 0, again.stderr
    _assert_clean(mnt / "cache" / store, read_all_arrays(tmp_path / "clean" / store))
