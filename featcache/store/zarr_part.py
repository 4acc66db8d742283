"""Writing one part of a local Zarr store: into the work folder, then renamed into place.

A part folder appears under ``parts/<k>`` whole or not at all (one ``os.rename`` of the folder,
then its parent is fsynced); a writer killed before the rename leaves only a temporary folder
under the store's work folder, which the next run removes. Object storage has no rename: there
:class:`featcache.store.zarr_remote.MarkerPartSink` writes in place and marks the part last.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from featcache.atomic import fsync_dir
from featcache.store.base import CHUNK_FRAMES, PartMeta, PartSink
from featcache.store.paths import remove_path, tmp_name, work_dir
from featcache.store.zarr_arrays import PART_ATTR, create_checked_array


class ZarrPartSink(PartSink):
    """Writes part ``k`` under the store's work folder, then renames it into ``parts/<k>``."""

    def __init__(self, path: Path, k: int, shape_ld: tuple[int, int], dtype: str, compression):
        import zarr

        self.shape_ld = shape_ld
        self._compression = compression
        self._final = path / "parts" / str(k)
        self._tmp = work_dir(path) / tmp_name(k)
        self._tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._group = zarr.create_group(store=str(self._tmp))
            self._open_arrays(self._array, dtype)
        except BaseException:
            remove_path(self._tmp)  # e.g. a full disk while creating the arrays
            raise

    def _array(self, name: str, chunks: tuple, dtype: str):
        """An empty, growable (0, L, D) array of the part, with the store's checksummed codecs."""
        return create_checked_array(
            self._group,
            name,
            shape=(0, *self.shape_ld),
            chunks=chunks,
            dtype=dtype,
            compression=self._compression,
        )

    def write(self, start: int, frames: np.ndarray, scale: np.ndarray | None = None) -> None:
        end = start + len(frames)
        self._frames.resize((end, *self.shape_ld))
        self._frames[start:end] = frames
        if self._scale is not None:
            row = start // CHUNK_FRAMES
            self._scale.resize((row + len(scale), *self.shape_ld))
            self._scale[row:] = scale

    def commit(self, meta: PartMeta, pooled: np.ndarray) -> None:
        import zarr

        n = len(pooled)
        create_checked_array(
            self._group,
            "pooled",
            shape=pooled.shape,
            chunks=(max(1, n), *pooled.shape[1:]),
            dtype="float32",
            compression=self._compression,
        )[...] = pooled
        self._group.attrs[PART_ATTR] = meta.to_json()
        if not (self._final.parent / "zarr.json").exists():  # create() was killed half-way
            zarr.open_group(str(self._final.parent.parent), mode="r+").require_group("parts")
        try:
            os.rename(self._tmp, self._final)  # a folder: renamed whole, then made durable
            fsync_dir(self._final.parent)
        except OSError:
            if not (self._final / "zarr.json").exists():
                raise
            remove_path(self._tmp)  # another process completed the same part first

    def abort(self) -> None:
        drain_zarr_io()  # else chunk writes still in flight recreate the folder after removal
        remove_path(self._tmp)


def drain_zarr_io(timeout: float = 60.0) -> None:
    """Wait for zarr's I/O tasks still running: when one chunk write of an array assignment
    fails (a full disk), zarr raises at once while the other chunk writes go on."""
    import asyncio

    from zarr.core.sync import sync

    async def drain():
        me = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if others:
            await asyncio.wait(others, timeout=timeout)

    sync(drain())
