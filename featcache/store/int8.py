"""The int8 frame dtype: symmetric quantisation per (chunk of frames, layer, channel).

Store contract (DESIGN.md, "The layer cache"): an int8 part holds ``frames [F, L, D] int8`` and
``scale [ceil(F / C), L, D] float32`` with ``C = attrs["featcache"]["chunk_frames"]``; the float
value of frame ``f``, layer ``l``, channel ``d`` is ``frames[f, l, d] * scale[f // C, l, d]``.
``scale = max |x| / 127`` over the C frames of that chunk, for that layer and channel, so an
outlier in one channel or one stretch of audio costs precision nowhere else, and zero stays zero.
Rounding is to nearest, so the absolute error of a value is at most ``scale / 2``: 1/254 of the
largest magnitude of its channel in its chunk.

Chunks are aligned to the part's frame index (frames ``[j*C, (j+1)*C)``), which is also how the
writer flushes (whole chunks, :data:`featcache.store.base.WRITE_BLOCK_FRAMES`): the bytes of a
part never depend on how its writes were split, nor on the number of workers.
"""

from __future__ import annotations

import numpy as np

QMAX = 127


def quantize(frames: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantise frames whose first row is a chunk boundary.

    Parameters
    ----------
    frames : np.ndarray
        (F, L, D) float32; row 0 is frame ``j * chunk`` of its part for some j.
    chunk : int
        C, frames per scale row.

    Returns
    -------
    q : np.ndarray
        (F, L, D) int8.
    scale : np.ndarray
        (ceil(F / C), L, D) float32.
    """
    num, num_layers, dim = frames.shape
    rows = -(-num // chunk)
    q = np.empty((num, num_layers, dim), np.int8)
    scale = np.empty((rows, num_layers, dim), np.float32)
    for row in range(rows):  # one chunk at a time: temporaries stay (C, L, D)
        x = frames[row * chunk : (row + 1) * chunk]  # (C, L, D)
        scale[row] = np.abs(x).max(axis=0) / np.float32(QMAX)  # (L, D)
        inv = np.divide(1.0, scale[row], out=np.zeros((num_layers, dim), np.float32),
                        where=scale[row] > 0)  # fmt: skip
        y = np.rint(x * inv)  # (C, L, D); |y| <= 127 up to the rounding of 1 / scale
        np.clip(y, -QMAX, QMAX, out=y)
        q[row * chunk : (row + 1) * chunk] = y
    return q, scale


def dequantize(q: np.ndarray, scale: np.ndarray, start: int, chunk: int) -> np.ndarray:
    """Float values of int8 rows ``start : start + len(q)`` of a part.

    Parameters
    ----------
    q : np.ndarray
        (T, ...) int8, rows ``start ...`` of ``frames`` (any trailing layer/channel selection).
    scale : np.ndarray
        (S, ...) float32, rows ``start // chunk ...`` of ``scale`` with the same selection,
        at least up to the chunk of the last row.
    start : int
        Part frame index of ``q[0]``.
    chunk : int
        C.

    Returns
    -------
    np.ndarray
        (T, ...) float32.
    """
    out = q.astype(np.float32)
    first = start // chunk
    stop = start + len(q)
    for row in range(first, -(-stop // chunk)):  # one multiply per chunk the rows touch
        a, b = max(start, row * chunk) - start, min(stop, (row + 1) * chunk) - start
        out[a:b] *= scale[row - first]
    return out


def scale_rows(start: int, stop: int, chunk: int) -> slice:
    """Rows of ``scale`` covering frame rows ``start:stop``."""
    return slice(start // chunk, max(start // chunk, -(-stop // chunk)))


def read_dequantized(frames, scale, rows: slice, chunk: int, cols=None) -> np.ndarray:
    """Read and dequantise ``frames[rows]`` (optionally ``[:, cols]``) of an int8 part.

    ``frames`` and ``scale`` are array-likes (zarr arrays, h5py datasets); ``cols`` is an
    int or slice over the layer axis, or a tuple of indices over (layer, channel).
    """
    start, stop, _ = rows.indices(frames.shape[0])
    stop = max(start, stop)
    srows = scale_rows(start, stop, chunk)
    if cols is None:
        return dequantize(frames[start:stop], scale[srows], start, chunk)
    cols = cols if isinstance(cols, tuple) else (cols,)
    return dequantize(frames[(slice(start, stop), *cols)], scale[(srows, *cols)], start, chunk)
