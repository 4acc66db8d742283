"""Frame-level rows for analysis: utterances shared by several stores, aligned in time, subsampled.

Models differ in frame rate (fbank 100/s, SSL models and Whisper 50/s). As in fusion training
(:class:`featcache.fusion.align.Aligner`), each utterance's frames are resampled by linear
interpolation along time to the largest frame count among the models, i.e. to the highest frame
rate, so that row t of every model describes the same instant. This module does it in numpy (the
same sampling grid as the trainer's ``torch.nn.functional.interpolate``), without importing torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["FramePlan", "aligned_length", "interpolate_time", "shared_utterances"]


def shared_utterances(readers: Sequence, ids: Sequence[str] | None = None) -> list[str]:
    """Utterance ids every reader holds, in the first reader's order, optionally narrowed to ``ids``."""
    keep = set(ids) if ids is not None else None
    others = [set(r.utterances) for r in readers[1:]]
    return [
        u
        for u in readers[0].utterances
        if (keep is None or u in keep) and all(u in other for other in others)
    ]


def aligned_length(num_frames: Sequence[int]) -> int:
    """Frames of one utterance once aligned: the largest count, as fusion training's ``Aligner``."""
    return int(max(num_frames))


def interpolate_time(frames: np.ndarray, length: int, rows=None) -> np.ndarray:
    """Resample ``frames`` (T, ...) to ``length`` rows by linear interpolation along time.

    Same sampling grid as ``torch.nn.functional.interpolate(mode="linear", align_corners=False)``,
    the resampling fusion training uses. ``rows`` (indices into the resampled sequence) computes
    only those rows.
    """
    t = frames.shape[0]
    if t == length:
        return frames if rows is None else frames[rows]
    dst = np.arange(length) if rows is None else np.asarray(rows)
    src = (dst + 0.5) * (t / length) - 0.5
    src = np.clip(src, 0.0, t - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    w = (src - lo).astype(frames.dtype).reshape((-1,) + (1,) * (frames.ndim - 1))
    return frames[lo] * (1 - w) + frames[hi] * w  # (length, ...)


class FramePlan:
    """Which aligned frames of which shared utterances to use, fixed before any data is read.

    Parameters
    ----------
    readers : sequence of CacheReader
        The stores to align (two for a CKA pair, one for a probe).
    ids : sequence of str
        Shared utterance ids, in order.
    max_frames : int or None
        Keep at most this many aligned frames, chosen uniformly at random with ``seed``
        (deterministic: the same cache, ids and seed always give the same frames).
    """

    def __init__(self, readers: Sequence, ids: Sequence[str], max_frames=None, seed: int = 0):
        if max_frames is not None and (isinstance(max_frames, bool) or int(max_frames) < 1):
            from featcache.errors import ConfigError

            raise ConfigError(f"--max-frames must be positive (or 0 for all), got {max_frames}")
        self.readers = list(readers)
        self.ids = list(ids)
        counts = [np.asarray(r.num_frames)[[r.index(u) for u in self.ids]] for r in readers]
        self.lengths = np.array(
            [aligned_length([c[i] for c in counts]) for i in range(len(self.ids))], dtype=np.int64
        )
        total = int(self.lengths.sum())
        self.selected: list[np.ndarray | None] = [None] * len(self.ids)  # None = every frame
        if max_frames is not None and max_frames < total:
            rng = np.random.default_rng(seed)
            picks = np.sort(rng.choice(total, size=int(max_frames), replace=False))
            starts = np.concatenate([[0], np.cumsum(self.lengths)])
            for i in range(len(self.ids)):
                lo, hi = np.searchsorted(picks, [starts[i], starts[i + 1]])
                self.selected[i] = picks[lo:hi] - starts[i]
        self.num_rows = total if max_frames is None else min(total, int(max_frames))

    def utterance_rows(self, layers: Sequence[Sequence[int] | None]) -> Iterator[tuple]:
        """Yield ``(utt_index, [frames (n, L_r, D_r) per reader])`` for every utterance with rows.

        ``layers[r]`` lists the layer positions to read from reader r (None = all of them).
        """
        for i, utt in enumerate(self.ids):
            sel = self.selected[i]
            if sel is not None and len(sel) == 0:
                continue
            out = []
            for reader, want in zip(self.readers, layers, strict=True):
                frames = reader.get(utt, layers=_model_layers(reader, want))  # (T, L, D)
                out.append(interpolate_time(frames, int(self.lengths[i]), sel))  # (n, L, D)
            yield i, out


def _model_layers(reader, positions):
    """Model layer indices (as ``reader.get`` expects) of the given positions in ``reader.layers``."""
    if positions is None:
        return None
    return [reader.layers[p] for p in positions]
