"""Damage found while reading a store: an error naming the store, the part and the frames.

Backends hand out ``parts/<k>/frames`` wrapped in :class:`CheckedFrames`, so whoever reads frames
(the reader, dask graphs, training loaders) gets a :class:`featcache.errors.StoreError` saying
where the damage is and what to do, never a value decoded from damaged bytes. The store's attrs
and index are read through :func:`read_checked_attrs` and :func:`read_checked_index` (by the
reader and by ``featcache verify``) for the same reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featcache.errors import StoreError

REPAIR_HINT = "run `featcache verify CACHE --repair`, then the same `featcache extract` command"

# what zarr (ValueError: checksum mismatch, bad codec data) and h5py (OSError: fletcher32,
# filter or file damage) raise for damaged bytes
DECODE_ERRORS = (ValueError, OSError, RuntimeError, KeyError, TypeError)


def damaged(path: Path, what: str, why: str) -> StoreError:
    return StoreError(f"{path}: {what} is damaged ({why}); {REPAIR_HINT}")


def describe_rows(key, length: int, chunk_frames: int | None = None) -> str:
    """``frames a-b`` for the row part of an index ``key`` into an array of ``length`` rows."""
    rows = key[0] if isinstance(key, tuple) and key else key
    if isinstance(rows, slice):
        start, stop, _ = rows.indices(length)
        return f"frames {start}-{max(start, stop - 1)}"
    if isinstance(rows, (int, np.integer)):
        return f"frame {int(rows)}"
    return f"frames 0-{max(0, length - 1)}"


class CheckedFrames:
    """Array-like over one part's frames whose read errors say store, part and frames."""

    def __init__(self, array, path: Path, k: int):
        self._array = array
        self.path, self.k = path, k
        self.shape, self.dtype, self.ndim = tuple(array.shape), np.dtype(array.dtype), array.ndim

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        try:
            return self._array[key]
        except DECODE_ERRORS as e:
            rows = describe_rows(key, self.shape[0])
            raise damaged(self.path, f"part {self.k}, {rows}", _short(e)) from e


def chunk_rows(coords: tuple[int, ...], chunk_frames: int, length: int) -> str:
    start = coords[0] * chunk_frames
    return f"frames {start}-{min(length, start + chunk_frames) - 1}"


def _short(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:200]


# attrs a store must have, and their types (a hand-edited or damaged zarr.json fails here)
REQUIRED_ATTRS = {"layers": list, "hidden_size": int, "frame_rate": (int, float),
                  "sample_rate": int, "dtype": str, "num_layers": int}  # fmt: skip


def read_checked_attrs(handle, path: Path) -> dict:
    """The store's attrs, or a StoreError naming what is wrong with them."""
    try:
        attrs = handle.attrs()
    except DECODE_ERRORS as e:
        raise damaged(path, "attrs['featcache']", f"cannot read: {e}") from e
    if not isinstance(attrs, dict):
        raise damaged(path, "attrs['featcache']", "not a JSON object")
    for key, kind in REQUIRED_ATTRS.items():
        if not isinstance(attrs.get(key), kind) or isinstance(attrs.get(key), bool):
            raise damaged(path, "attrs['featcache']", f"{key}={attrs.get(key)!r} is not valid")
    if attrs["num_layers"] != len(attrs["layers"]):
        raise damaged(path, "attrs['featcache']", "num_layers differs from len(layers)")
    return attrs


def read_checked_index(handle, path: Path):
    """The store's index arrays, checked for equal lengths (an error names what is damaged)."""
    try:
        index = handle.index()
    except DECODE_ERRORS as e:
        raise damaged(path, "the index (utt_id, part, offset, num_frames, errors)", str(e)) from e
    n = len(index.utt_id)
    lengths = {"part": len(index.part), "offset": len(index.offset),
               "num_frames": len(index.num_frames)}  # fmt: skip
    if any(v != n for v in lengths.values()) or len(index.error_ids) != len(index.error_reasons):
        raise damaged(path, "the index", f"utt_id has {n} rows but {lengths}")
    return index
