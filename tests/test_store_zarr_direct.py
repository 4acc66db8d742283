"""Reading featcache's Zarr layout straight from chunk files gives zarr's values and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from featcache.errors import StoreError
from featcache.manifest import Manifest
from featcache.store import open_cache
from featcache.store.zarr_direct import direct_frames
from featcache.testing.caches import write_cache


def _store(tmp_path, dtype="float16", compression="lz4"):
    rng = np.random.default_rng(4)
    records = [{"id": f"u{i}", "audio": "x.wav", "split": "train"} for i in range(9)]
    manifest = Manifest.from_records(records, tmp_path / "manifest.jsonl")
    arrays = {r["id"]: rng.normal(size=(int(rng.integers(300, 900)), 4, 6)).astype(np.float32)
              for r in records}  # fmt: skip
    path = write_cache(tmp_path / "cache", "s", arrays, manifest, 50.0, dtype=dtype,
                       part_size=5, compression=compression)  # fmt: skip
    return open_cache(tmp_path / "cache", "s"), Path(path)


@pytest.mark.parametrize("dtype,compression", [("float16", "lz4"), ("float32", "zstd")])
def test_direct_reads_equal_zarr_reads(tmp_path, dtype, compression):
    reader, path = _store(tmp_path, dtype, compression)
    frames = zarr.open_array(str(path / "parts" / "0" / "frames"), mode="r")
    direct = reader._direct_frames(0)
    assert direct is not None and direct.dtype == np.dtype(dtype)
    n = frames.shape[0]
    assert n > 2 * 1024  # ranges across chunk boundaries and into the edge chunk
    for start, stop, cols in [(0, n, None), (1000, 1030, None), (1020, 2050, [1, 3]),
                              (n - 5, n, [0]), (0, 1, None), (2047, 2049, [3, 2])]:  # fmt: skip
        want = frames[start:stop] if cols is None else frames[start:stop][:, cols]
        got = direct.read(start, stop, cols)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    for utt in reader.utterances:  # and the reader's own path, every utterance
        part, offset, count = reader.location(utt)
        stored = zarr.open_array(str(path / "parts" / str(part) / "frames"), mode="r")
        want = stored[offset : offset + count].astype(np.float32)
        assert np.array_equal(reader.get(utt), want)
        assert np.array_equal(reader.get(utt, layers=[reader.layers[2]]), want[:, [2]])


def test_other_layouts_are_left_to_zarr(tmp_path):
    other = zarr.create_array(str(tmp_path / "frames"), shape=(100, 2, 3), chunks=(10, 1, 3),
                              dtype="float32")  # zarr's default codecs (zstd), no crc32c  # fmt: skip
    other[:] = 1.0
    assert direct_frames(tmp_path / "frames") is None
    assert direct_frames(tmp_path / "absent") is None


def test_a_chunk_deleted_or_flipped_after_opening_is_a_store_error(tmp_path):
    reader, path = _store(tmp_path)
    utt = next(u for u in reader.utterances if reader.location(u)[0] == 1)
    reader.get(utt)  # opened and checked
    chunk = path / "parts" / "1" / "frames" / "c" / "0" / "2" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"part 1, frames \d+-\d+ is damaged .*checksum"):
        reader.get(utt)
    chunk.unlink()
    with pytest.raises(StoreError, match=r"part 1, frames \d+-\d+ is damaged .*missing"):
        reader.get(utt)


def test_a_short_read_keeps_only_its_frames(tmp_path):
    # chunks decode in place into a buffer of whole chunks; what one utterance's read returns
    # must not keep the rest of those chunks alive (a caller holding many utterances would
    # hold up to 1024 frames per layer each)
    reader, _ = _store(tmp_path)
    direct = reader._direct_frames(0)
    short = direct.read(1000, 1030)  # (30, 4, 6), inside chunks 0 and 1
    owner = short if short.base is None else short.base
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    assert owner.nbytes == short.nbytes
    assert short.flags.c_contiguous  # laid out as zarr returns it
