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

import contextlib
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
        """Frames ``start:stop`` of layer positions ``cols`` (default all): ``(F, L', D)``.

        The result is a view of layer-major ``(L', F, D)`` memory (each layer's rows
        contiguous, as training batches lay them out): every chunk is decoded straight into
        its place in a buffer of whole chunks, with no intermediate copy; a read of less than
        half that buffer is copied out of it into a C-contiguous ``(F, L', D)`` array.
        """
        rows, layers, dim = self.shape
        start, stop = max(0, start), min(rows, stop)
        cols = list(range(layers)) if cols is None else list(cols)
        if stop <= start:
            return np.empty((0, len(cols), dim), self.dtype)  # (0, L', D)
        c0, c1 = start // self.chunk_rows, -(-stop // self.chunk_rows)
        # whole chunks, so each decodes in place; edge chunks are stored whole
        out = np.empty((len(cols), (c1 - c0) * self.chunk_rows, dim), self.dtype)  # (L', F', D)
        paths = [[f"{self.folder}/c/{c}/{layer}/0" for layer in cols] for c in range(c0, c1)]
        _read_ahead([p for row in paths for p in row])
        decode = _Decoder(self.chunk_rows * dim * self.dtype.itemsize)
        with _blosc_single_thread():
            for i, row in enumerate(paths):
                for j, path in enumerate(row):
                    decode(path, out[j, i * self.chunk_rows : (i + 1) * self.chunk_rows])
        first = c0 * self.chunk_rows
        picked = out[:, start - first : stop - first]  # (L', F, D)
        if 2 * (stop - start) < out.shape[1]:
            # a short read (one utterance, as ``get`` makes) is copied out, C-contiguous like
            # zarr's result, so what a caller keeps never pins whole chunks it did not ask for
            return np.ascontiguousarray(picked.transpose(1, 0, 2))  # (F, L', D)
        return picked.transpose(1, 0, 2)  # (F, L', D) view of layer-major memory


@contextlib.contextmanager
def _blosc_single_thread():
    """numcodecs' Blosc decodes without its thread pool meanwhile (it uses the pool only from the
    main thread; DataLoader workers never do). Per ~1 MB chunk the pool's hand-offs cost more
    than they save: decoding the benchmark store's chunks took 15-20 ms on one thread vs 45 ms
    with the pool (``benchmarks/read_throughput.py``'s store, 2 cores)."""
    from numcodecs import blosc

    before = blosc.use_threads
    blosc.use_threads = False
    try:
        yield
    finally:
        blosc.use_threads = before


class _Decoder:
    """Reads, checks and decodes chunk files into given ``(C, D)`` rows, reusing one buffer."""

    def __init__(self, size: int) -> None:
        from numcodecs import Blosc

        self.size = size
        self.codec = Blosc()
        self.buffer = bytearray(size + 64)

    def __call__(self, path: str, target: np.ndarray) -> None:
        try:
            with open(path, "rb", buffering=0) as f:
                count = os.fstat(f.fileno()).st_size
                if count > len(self.buffer):
                    self.buffer = bytearray(count)
                got = f.readinto(memoryview(self.buffer)[:count])
        except FileNotFoundError:  # featcache writes every chunk (write_empty_chunks)
            raise ValueError(f"chunk file {path} is missing") from None
        if got != count:
            raise ValueError(f"chunk file {path} changed while read ({got} of {count} bytes)")
        body = _checked(np.frombuffer(self.buffer, np.uint8, count), path)
        decoded = int.from_bytes(body[4:8].tobytes(), "little")  # blosc header: nbytes
        if decoded != self.size:
            raise ValueError(f"chunk {path} decodes to {decoded} bytes, not {self.size}")
        self.codec.decode(body, out=target)


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


def _checked(data: np.ndarray, path) -> np.ndarray:
    """The chunk's bytes (uint8) without its crc32c, after checking it (ValueError when it
    differs)."""
    import google_crc32c

    body = data[:-4]
    body.flags.writeable = False  # google_crc32c reads only read-only buffers
    stored = int.from_bytes(data[-4:].tobytes(), "little")
    if len(data) < 4 or google_crc32c.value(body) != stored:
        raise ValueError(f"Stored and computed checksum do not match in {path}")
    return body
