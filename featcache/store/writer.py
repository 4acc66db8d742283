"""The write step of one part: utterances' hidden states in, whole chunks out to a backend.

:class:`PartWriter` keeps the chosen layers, pools each utterance, transposes ``(L, T, D)`` to
``(T, L, D)``, casts to the store dtype (int8: quantised per chunk, :mod:`featcache.store.int8`)
and hands the backend's :class:`~featcache.store.base.PartSink` blocks of whole chunks, so no
chunk is ever rewritten.
"""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from featcache.store.base import CHUNK_FRAMES, WRITE_BLOCK_FRAMES, PartMeta, PartSink


class PartWriter:
    """Collects one part's utterances and hands whole chunks to a backend.

    Layer selection, pooling, the (L, T, D) -> (T, L, D) transpose, the dtype cast, compression
    and I/O all run on ``executor``: a one-thread pool makes ``add`` return at once and overlaps
    the writing with the model's next forward (the extract pipeline does this on GPUs); an inline
    executor writes in between forwards. ``close`` returns a future that completes when the part
    is committed.
    """

    def __init__(self, sink: PartSink, layers: list[int], dtype: str, executor: ThreadPoolExecutor):
        self._sink = sink
        self._layers = np.asarray(layers)
        self._all_layers = list(layers) == list(range(len(layers)))
        self._dtype = np.dtype(dtype)
        self._int8 = self._dtype == np.int8  # buffered as float32, quantised per whole chunk
        self._executor = executor
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._written = 0
        self._pooled: list[np.ndarray] = []
        self._meta = PartMeta()
        self._pending: list[Future] = []

    def add(self, utt_id: str, hidden: np.ndarray) -> None:
        """Queue one utterance's hidden states (L_model, T, D) float32."""
        self._pending.append(self._executor.submit(self._add, utt_id, hidden))

    def fail(self, utt_id: str, reason: str) -> None:
        """Record that an utterance of this part failed."""
        self._meta.errors[utt_id] = reason

    def close(self) -> Future:
        """Flush and commit; the future raises whatever the writer thread raised."""
        return self._executor.submit(self._close, list(self._pending))

    def _add(self, utt_id: str, hidden: np.ndarray) -> None:
        if not (self._all_layers and len(hidden) == len(self._layers)):
            hidden = hidden[self._layers]  # (L, T, D) kept layers only
        frames = _to_frames(hidden, np.float32 if self._int8 else self._dtype)  # (T, L, D)
        if _has_inf(frames) if self._dtype == np.float16 else not np.isfinite(frames).all():
            self._meta.errors[utt_id] = _non_finite_reason(hidden)
            return
        self._pooled.append(hidden.mean(axis=1, dtype=np.float64).astype(np.float32))  # (L, D)
        self._meta.utt_ids.append(utt_id)
        self._meta.num_frames.append(int(frames.shape[0]))
        self._buffer.append(frames)
        self._buffered += frames.shape[0]
        if self._buffered >= WRITE_BLOCK_FRAMES:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._buffered:
            return
        block = np.concatenate(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        n = len(block) if final else len(block) // CHUNK_FRAMES * CHUNK_FRAMES
        if self._int8:
            from featcache.store.int8 import quantize

            self._sink.write(self._written, *quantize(block[:n], CHUNK_FRAMES))
        else:
            self._sink.write(self._written, block[:n])
        self._written += n
        rest = block[n:]
        self._buffer = [rest] if len(rest) else []
        self._buffered = len(rest)

    def _close(self, pending: list[Future]) -> None:
        try:
            for f in pending:
                f.result()
            self._flush(final=True)
            empty = np.zeros((0, *self._sink.shape_ld), np.float32)
            pooled = np.stack(self._pooled) if self._pooled else empty  # (N, L, D)
            self._sink.commit(self._meta, pooled)
        except BaseException:
            self._sink.abort()
            raise


def _to_frames(hidden: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(L, T, D) float32 -> contiguous (T, L, D) in the store dtype.

    numpy's float32 -> float16 cast runs at ~1 GB/s; torch's is ~3x faster, so use torch when
    the process has already imported it (extraction always has). Both round to nearest even.
    """
    torch = sys.modules.get("torch")
    if torch is not None and dtype == np.float16:
        t = torch.from_numpy(np.ascontiguousarray(hidden))  # (L, T, D)
        return t.permute(1, 0, 2).to(torch.float16).contiguous().numpy()  # (T, L, D)
    with np.errstate(over="ignore"):  # overflow is detected by the caller
        return np.ascontiguousarray(hidden.transpose(1, 0, 2), dtype=dtype)  # (T, L, D)


def _non_finite_reason(hidden: np.ndarray) -> str:
    if not np.isfinite(hidden).all():
        return "the upstream produced NaN or infinite hidden states"
    return (
        f"hidden states reach {float(np.abs(hidden).max()):.4g}, beyond float16's range "
        f"(65504); extract this upstream with --dtype float32"
    )


def _has_inf(frames: np.ndarray) -> bool:
    """True if a float16 array holds inf or NaN (exponent bits all set), without a float pass."""
    return bool(((frames.view(np.uint16) & 0x7C00) == 0x7C00).any())
