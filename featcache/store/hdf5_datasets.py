"""How every dataset of an HDF5 store is made, opened and checked, and the free-space guard.

Every dataset goes through :func:`create_checked_dataset` (chunked, Blosc via hdf5plugin, the
fletcher32 checksum filter); every write checks free space first (:func:`ensure_space`), as h5py
cannot recover from a full disk met while flushing. Used by :mod:`featcache.store.hdf5` and
:mod:`featcache.store.hdf5_part`.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np

from featcache.errors import StoreError, StoreNotFoundError
from featcache.store.base import DEFAULT_COMPRESSION, Index

PART_ATTR = "featcache_part"  # the attrs key of a part file's metadata (PartMeta, JSON)


def h5py_module():
    import h5py
    import hdf5plugin  # noqa: F401  (registers the LZ4/zstd/blosc filters)

    return h5py


def _compression(name: str = DEFAULT_COMPRESSION) -> dict:
    """h5py dataset options for "lz4", "zstd" (Blosc, byte shuffle, level 1) or "none", always
    with the fletcher32 checksum filter (applied after compression, so it covers stored bytes)."""
    import hdf5plugin

    if name == "none":
        return {"fletcher32": True}
    blosc = hdf5plugin.Blosc(cname=name, clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE)
    return {**dict(blosc), "fletcher32": True}


# free bytes kept beyond what a write needs, for HDF5's metadata
SPACE_MARGIN = 4 * 2**20


def ensure_space(folder: Path, nbytes: int) -> None:
    """Raise ``ENOSPC`` before HDF5 would meet a full disk itself.

    When HDF5 runs out of space while flushing, h5py cannot close the file, and freeing it then
    crashes the process (a segmentation fault, measured with h5py 3.16): so every write of this
    backend checks the free space first (twice the bytes, plus :data:`SPACE_MARGIN`).
    """
    free = shutil.disk_usage(folder).free
    if free < 2 * nbytes + SPACE_MARGIN:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free} bytes free in {folder})")


def create_checked_dataset(group, name: str, data=None, *, compression: str = "none", **kwargs):
    """``group.create_dataset`` chunked, with the checksum filter: every dataset of a store is
    made here (frames, pooled means, index, int8 scales alike). Strings are fixed-length UTF-8
    (HDF5 cannot filter variable-length data); ``dataset.asstr()[:]`` reads them as ``str``.
    """
    if data is not None and data.dtype.kind in "OUS":
        encoded = [str(v).encode() for v in data.ravel()]
        width = max((len(b) for b in encoded), default=1) or 1
        dtype = h5py_module().string_dtype("utf-8", width)
        data = np.array(encoded, dtype=dtype).reshape(data.shape)
    shape = kwargs.pop("shape", None) or data.shape
    if "chunks" not in kwargs:
        kwargs["chunks"] = tuple(max(1, min(n, 65536)) for n in shape) if shape else None
    kwargs.setdefault("maxshape", (None, *shape[1:]))
    return group.create_dataset(name, shape=shape, data=data, **_compression(compression), **kwargs)


def write_index(f, index: Index, compression: str) -> None:
    create_checked_dataset(f, "utt_id", np.array(index.utt_id, dtype=object))
    create_checked_dataset(f, "part", index.part.astype(np.int32))
    create_checked_dataset(f, "offset", index.offset.astype(np.int64))
    create_checked_dataset(f, "num_frames", index.num_frames.astype(np.int64))
    n, num_layers, dim = index.pooled.shape
    create_checked_dataset(
        f,
        "pooled/mean",
        index.pooled.astype(np.float32),
        chunks=(max(1, min(n, 256)), max(1, num_layers), max(1, dim)),
        compression=compression,
    )
    create_checked_dataset(f, "errors/utt_id", np.array(index.error_ids, dtype=object))
    create_checked_dataset(f, "errors/reason", np.array(index.error_reasons, dtype=object))


def open_file(path: Path, mode: str = "r"):
    h5py = h5py_module()
    if not Path(path).is_file():
        raise StoreNotFoundError(f"{path}: no HDF5 store here; run `featcache extract` first")
    try:
        return h5py.File(path, mode)
    except OSError as e:
        raise StoreError(f"{path}: cannot open as HDF5 ({e})") from e
