"""The Zarr backend on object storage (an fsspec URL), where nothing can be renamed.

A part is written in place under ``parts/<k>/``; the part group's ``zarr.json``, holding the
part's metadata, is written last in one PUT (a whole object or none) and is the part's
completion marker (:class:`MarkerPartSink`, :func:`marked_parts`). Readers may keep the frame
chunks they read in a local folder (:func:`cached_group`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from featcache.store.base import PartMeta
from featcache.store.location import RemoteDir
from featcache.store.zarr_arrays import PART_ATTR, frame_compressors, zstore
from featcache.store.zarr_part import ZarrPartSink


class MarkerPartSink(ZarrPartSink):
    """Writes part ``k`` in place on object storage; its metadata object last, as the marker.

    Objects left by a writer killed before its marker are removed first, so a rerun rewrites
    the part whole. Each part is given to one task, so only this process writes under
    ``parts/<k>/`` and no two writers share an object (zarr loses data when they do, zarr
    issue 3682).
    """

    def __init__(self, path: RemoteDir, k: int, shape_ld: tuple[int, int], dtype: str,
                 compression: str):  # fmt: skip
        self.shape_ld = shape_ld
        self._compression = compression
        self._store = path
        self._dir = path / "parts" / str(k)
        self._dir.rmtree()  # a killed writer's half-written part: no marker, so rewrite it
        self._open_arrays(self._array, dtype)

    def _array(self, name: str, chunks: tuple, dtype: str):
        import zarr

        return zarr.create_array(
            store=zstore(self._dir / name),
            shape=(0, *self.shape_ld),
            chunks=chunks,
            dtype=dtype,
            compressors=frame_compressors(self._compression),
            config={"write_empty_chunks": True},  # as create_checked_array: a gap is damage
        )

    def commit(self, meta: PartMeta, pooled: np.ndarray) -> None:
        import zarr

        zarr.create_array(
            store=zstore(self._dir / "pooled"),
            shape=pooled.shape,
            chunks=(max(1, len(pooled)), *pooled.shape[1:]),
            dtype="float32",
            compressors=frame_compressors(self._compression),
            config={"write_empty_chunks": True},  # as create_checked_array: a gap is damage
        )[...] = pooled
        if not (self._store / "parts" / "zarr.json").exists():  # create() was killed half-way
            zarr.open_group(zstore(self._store), mode="r+").require_group("parts")
        zarr.create_group(store=zstore(self._dir), attributes={PART_ATTR: meta.to_json()})

    def abort(self) -> None:
        self._dir.rmtree()


def marked_parts(path: RemoteDir) -> dict[int, PartMeta]:
    """Every part whose marker exists, its markers fetched concurrently."""
    parts = path / "parts"
    names = [p.name for p in parts.iterdir() if p.name.isdigit()]
    out = {}
    for key, raw in parts.read_many([f"{n}/zarr.json" for n in names]).items():
        attrs = json.loads(raw).get("attributes", {})
        if PART_ATTR in attrs:
            out[int(key.split("/")[0])] = PartMeta.from_json(attrs[PART_ATTR])
    return dict(sorted(out.items()))


def cached_group(path: RemoteDir, chunk_cache: str, attrs: dict):
    """The store's group read through a local simplecache folder.

    Parts never change once complete, but a rebuilt store reuses their names: the cache folder
    is keyed by the store's URL and its ``created`` stamp and manifest, so a rebuild starts a
    fresh one.
    """
    import hashlib

    import zarr

    key = f"{path.url}|{attrs.get('created')}|{attrs.get('manifest_sha256')}"
    folder = Path(chunk_cache) / hashlib.sha256(key.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return zarr.open_group(path.zarr_store(read_only=True, chunk_cache=str(folder)), mode="r")
