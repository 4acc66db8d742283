"""Damage found while reading a store: an error naming the store, the part and the frames.

Backends hand out ``parts/<k>/frames`` wrapped in :class:`CheckedFrames`, so whoever reads frames
(the reader, dask graphs, training loaders) gets a :class:`featcache.errors.StoreError` saying
where the damage is and what to do, never a value decoded from damaged bytes.
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
