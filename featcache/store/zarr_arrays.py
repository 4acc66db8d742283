"""How every array of a Zarr store is made, opened and checked.

Every array goes through :func:`create_checked_array`: its codec chain ends in a ``crc32c``
checksum, so a flipped or truncated byte is a read error, and every chunk is written even when
it equals the fill value, so a complete part has every chunk key and a deleted chunk is detected
(zarr would otherwise read it back as zeros): :func:`missing_chunks`. Used by the local backend
(:mod:`featcache.store.zarr`, :mod:`featcache.store.zarr_part`) and on object storage
(:mod:`featcache.store.zarr_remote`) alike.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from featcache.errors import StoreError, StoreNotFoundError
from featcache.store.base import DEFAULT_COMPRESSION
from featcache.store.location import is_remote

PART_ATTR = "featcache_part"  # the attrs key of a part group's metadata (PartMeta)


def frame_compressors(compression: str = DEFAULT_COMPRESSION) -> list:
    """The bytes-to-bytes codecs of every array: "lz4"/"zstd" (Blosc, level 1) or none, then crc32c."""
    from zarr.codecs import BloscCodec, Crc32cCodec

    codecs = (
        []
        if compression == "none"
        else [BloscCodec(cname=compression, clevel=1, shuffle="shuffle")]
    )
    return [*codecs, Crc32cCodec()]


def create_checked_array(group, name: str, *, compression: str = "none", **kwargs):
    """``group.create_array`` with the checksummed codec chain and every chunk written.

    Every array of a store is made here (frames, pooled means, index, int8 scales alike).
    """
    return group.create_array(
        name,
        compressors=frame_compressors(compression),
        config={"write_empty_chunks": True},
        **kwargs,
    )


def missing_chunks(folder, array) -> list[tuple[int, ...]]:
    """Chunk coordinates of ``array`` (stored in ``folder``) whose chunk file does not exist.

    One listing of ``folder`` (a walk of a local folder, one ``find`` on object storage), not
    one query per chunk: a part of a long corpus has thousands of chunks.
    """
    import itertools

    if is_remote(folder):
        root = folder.path + "/"
        present = {p[len(root) :] for p in folder.fs.find(folder.path) if p.startswith(root)}
    else:
        present = {
            os.path.relpath(os.path.join(top, f), folder).replace(os.sep, "/")
            for top, _, files in os.walk(folder)
            for f in files
        }
    grid = itertools.product(*(range(n) for n in array.cdata_shape))
    return [c for c in grid if array.metadata.encode_chunk_key(c) not in present]


def zstore(path, read_only: bool = False):
    """What zarr opens: a local folder's name, or an fsspec store for a URL."""
    return path.zarr_store(read_only=read_only) if is_remote(path) else str(path)


def open_group(path: Path, mode: str):
    import zarr

    if not (path / "zarr.json").exists():
        raise StoreNotFoundError(f"{path}: no Zarr store here; run `featcache extract` first")
    try:
        return zarr.open_group(zstore(path, read_only=mode == "r"), mode=mode)
    except Exception as e:  # a corrupt or foreign folder
        raise StoreError(f"{path}: cannot open as a Zarr v3 group ({e})") from e


def put(group, name: str, values: np.ndarray, dtype=None) -> None:
    arr = create_checked_array(
        group,
        name,
        shape=values.shape,
        chunks=(max(1, min(len(values), 65536)),),
        dtype=dtype or values.dtype,
        overwrite=True,
    )
    if len(values):
        arr[...] = values
