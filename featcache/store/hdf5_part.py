"""Writing one part of an HDF5 store: its own file, under a temporary name, then renamed.

HDF5 has no safe concurrent writers, so part ``k`` is a file ``<slug>.h5.work/parts/<k>.h5``
written by one process (temporary name, then :func:`featcache.atomic.commit`); the backend
assembles the store from these files (:mod:`featcache.store.hdf5`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from featcache.atomic import commit
from featcache.store.base import CHUNK_FRAMES, PartMeta, PartSink
from featcache.store.hdf5_datasets import (
    PART_ATTR,
    create_checked_dataset,
    ensure_space,
    h5py_module,
)
from featcache.store.paths import remove_path, tmp_name, work_dir


class HDF5PartSink(PartSink):
    """Writes part ``k`` to a temporary file, renamed to ``<slug>.h5.work/parts/<k>.h5``."""

    def __init__(self, path: Path, k: int, shape_ld: tuple[int, int], dtype: str, compression):
        h5py = h5py_module()
        self.shape_ld = shape_ld
        parts = work_dir(path) / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        self._final = parts / f"{k}.h5"
        self._tmp = work_dir(path) / f"{tmp_name(k)}.h5"
        ensure_space(parts, 0)
        self._file = h5py.File(self._tmp, "w")
        self._compression = compression
        try:
            self._open_arrays(self._dataset, dtype)
        except BaseException:
            self.abort()  # e.g. a full disk while creating the datasets
            raise

    def _dataset(self, name: str, chunks: tuple, dtype: str):
        """An empty, growable (0, L, D) dataset of the part, with the store's checksummed filters."""
        return create_checked_dataset(
            self._file,
            name,
            shape=(0, *self.shape_ld),
            chunks=chunks,
            dtype=dtype,
            compression=self._compression,
        )

    def write(self, start: int, frames: np.ndarray, scale: np.ndarray | None = None) -> None:
        ensure_space(self._tmp.parent, frames.nbytes)
        end = start + len(frames)
        self._frames.resize(end, axis=0)
        self._frames[start:end] = frames
        if self._scale is not None:
            row = start // CHUNK_FRAMES
            self._scale.resize(row + len(scale), axis=0)
            self._scale[row:] = scale

    def commit(self, meta: PartMeta, pooled: np.ndarray) -> None:
        ensure_space(self._tmp.parent, pooled.size * 4)
        create_checked_dataset(self._file, "pooled", pooled.astype(np.float32))
        self._file.attrs[PART_ATTR] = json.dumps(meta.to_json())
        self._file.close()
        commit(self._tmp, self._final)

    def abort(self) -> None:
        try:
            if self._file.id.valid:
                self._file.close()  # may fail itself on a full disk (it flushes)
        except Exception:
            pass
        finally:
            remove_path(self._tmp)


def work_part_files(path: Path) -> dict[int, Path]:
    """Part number -> file of every complete part file in the store's work folder."""
    parts = work_dir(path) / "parts"
    files = parts.glob("*.h5") if parts.is_dir() else ()
    return {int(p.stem): p for p in sorted(files) if p.stem.isdigit()}


def work_parts_meta(path: Path) -> dict[int, PartMeta]:
    """Part number -> :class:`PartMeta` of every complete part file in the work folder."""
    h5py = h5py_module()
    out = {}
    for k, file in work_part_files(path).items():
        with h5py.File(file, "r") as f:
            out[k] = PartMeta.from_json(json.loads(f.attrs[PART_ATTR]))
    return out
