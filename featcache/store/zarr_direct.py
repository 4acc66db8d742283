"""Frame ranges of a local Zarr v3 part read straight from its chunk files.

Measured by ``benchmarks/read_throughput.py`` (page cache warm): reading, verifying and decoding
every chunk of a store runs at ~4 GB/s on one core, while zarr-python's codec pipeline delivers
the same frames at ~0.7-1.5 GB/s, its async machinery costing more than the decoding. featcache
writes one layout (``featcache.store.zarr``): a regular grid of ``(C, 1, D)`` chunks, codecs
``bytes`` (little endian) -> ``blosc`` -> ``crc32c``, the default ``c/i/j/k`` chunk keys. For
exactly that layout :class:`DirectFrames` reads rows ``start:stop`` to the same values as zarr:
every chunk's crc32c checked (a mismatch raises ``ValueError``, as zarr's codec does), edge
chunks stored whole, and a missing chunk file an error (featcache writes every chunk, even one
equal to the fill value, so a missing one is damage: ``featcache.store.zarr.missing_chunks``).
Any other layout (another codec, a sharded or remote store) gets None from
:func:`direct_frames` and stays with zarr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

CODECS = ("bytes", "blosc", "crc32c")


def direct_frames(folder: Path) -> DirectFrames | None:
    """A :class:`DirectFrames` over ``folder`` (a part's ``frames`` array), or None where its
    ``zarr.json`` is not featcache's layout."""
    try:
        meta = json.loads((Path(folder) / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    codecs = meta.get("codecs", [])
    grid = meta.get("chunk_grid", {})
    keys = meta.get("chunk_key_encoding", {})
    shape = meta.get("shape", [])
    chunk = grid.get("configuration", {}).get("chunk_shape", [])
    if (
        meta.get("zarr_format") != 3
        or tuple(c.get("name") for c in codecs) != CODECS
        or codecs[0].get("configuration", {}).get("endian", "little") != "little"
        or grid.get("name") != "regular"
        or keys.get("name") != "default"
        or keys.get("configuration", {}).get("separator", "/") != "/"
        or meta.get("data_type") not in ("float16", "float32")
        or meta.get("storage_transformers")
        or len(shape) != 3
        or len(chunk) != 3
        or chunk[1] != 1
        or chunk[2] != shape[2]
    ):
        return None
    return DirectFrames(Path(folder), tuple(shape), chunk[0], np.dtype(meta["data_type"]))


class DirectFrames:
    """Rows of one part's ``(N, L, D)`` frames, read chunk file by chunk file.

    Parameters
    ----------
    folder
        The array's folder (holding ``zarr.json`` and ``c/``).
    shape
        ``(N, L, D)``.
    chunk_rows
        C, frames per chunk.
    dtype
        As in ``zarr.json``.
    """

    def __init__(self, folder: Path, shape, chunk_rows: int, dtype) -> None:
        self.folder = folder
        self.shape = tuple(int(n) for n in shape)
        self.chunk_rows = int(chunk_rows)
        self.dtype = np.dtype(dtype)

    def read(self, start: int, stop: int, cols: list[int] | None = None) -> np.ndarray:
        """Frames ``start:stop`` of layer positions ``cols`` (default all): ``(F, L', D)``."""
        from numcodecs import Blosc

        rows, layers, dim = self.shape
        start, stop = max(0, start), min(rows, stop)
        cols = list(range(layers)) if cols is None else list(cols)
        out = np.empty((max(0, stop - start), len(cols), dim), self.dtype)  # (F, L', D)
        codec = Blosc()
        size = self.chunk_rows * dim * self.dtype.itemsize
        chunks = range(start // self.chunk_rows, -(-stop // self.chunk_rows))
        _read_ahead([self.folder / "c" / str(c) / str(j) / "0" for c in chunks for j in cols])
        for c in chunks:
            first = c * self.chunk_rows
            lo, hi = max(start, first), min(stop, first + self.chunk_rows)
            for j, layer in enumerate(cols):
                target = out[lo - start : hi - start, j]  # (rows, D)
                path = self.folder / "c" / str(c) / str(layer) / "0"
                try:
                    data = path.read_bytes()
                except FileNotFoundError:  # featcache writes every chunk (write_empty_chunks)
                    raise ValueError(f"chunk file {path} is missing") from None
                decoded = codec.decode(_checked(data, path))
                if len(decoded) != size:
                    raise ValueError(f"chunk {path} decodes to {len(decoded)} bytes, not {size}")
                chunk = np.frombuffer(decoded, self.dtype).reshape(self.chunk_rows, dim)
                target[...] = chunk[lo - first : hi - first]
        return out


def _read_ahead(paths: list[Path]) -> None:
    """Ask the kernel to start reading the files now (a cold disk then reads while the first
    chunks decode, as zarr's concurrent reads do); no-op where unsupported."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None or len(paths) < 2:
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # read() reports it
        try:
            advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)


def _checked(data: bytes, path: Path) -> bytes:
    """The chunk's bytes without its crc32c, after checking it (ValueError when it differs)."""
    import google_crc32c

    body = data[:-4]
    if len(data) < 4 or google_crc32c.value(body) != int.from_bytes(data[-4:], "little"):
        raise ValueError(f"Stored and computed checksum do not match in {path}")
    return body
