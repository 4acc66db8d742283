"""The pooled shortcut: train linear interfaces with a classify head on ``pooled/mean``.

Why it is exact. The model computes ``classifier(projector(masked_mean_t(f(s(x_t)))))`` where
``s`` is the input standardisation (:mod:`featcache.train.normalize`: ``(x - mu) / sigma`` per
layer and dimension, or the identity with ``--normalize none``), ``f`` the interface and the
masked mean runs over the utterance's valid frames, with weights ``1/T`` that sum to one. When
``s`` and ``f`` are affine per frame (``ws`` without layer norm is a fixed-per-step linear
combination of layers; ``last`` and ``layer:K`` select one; ``concat`` and ``group-ws`` project
(weighted sums of) layers linearly; several models of equal frame counts are fused per model,
concatenated and projected linearly: each entry's ``linear`` flag in the interface registry), the
mean moves inside:

    masked_mean_t(f(s(x_t))) = f(s(mean_t x_t))

so every logit, loss and gradient equals the frame path's, up to float rounding. The store's
``pooled/mean`` is exactly ``mean_t x_t`` per layer (the mean over all of the utterance's
frames, the same frames the head averages), so training reads one ``(L, D)`` row per utterance
instead of ``T`` frames: each utterance becomes a one-frame item and runs through the unchanged
model. Batches are still cut from the real frame counts, so the batch sequence, the optimizer
steps and the result are those of the frame path.

Where it is not exact, frames are read: ``ws:ln`` (a per-frame layer norm is not affine),
other interfaces (``hconv``'s ReLU, ``cls``, ``gumd``...), the CTC head (no pooling), and
several upstreams whose frame counts differ (the resampling to a common frame rate is linear
per utterance, but its edge weights make the mean of resampled frames differ from the mean).

One rounding difference is not float arithmetic: ``pooled/mean`` is accumulated in float64
from the hidden states before the store's float16 cast, while the frame path sees the float16
frames. For float32 stores the two paths agree to float rounding; for float16 stores they
differ by the float16 rounding of the frames averaged over the utterance (the pooled path is
the more accurate one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from featcache.fusion.registry import is_linear
from featcache.train.data import SplitDataset


def pooled_exact(interface: str, task: str, readers: Sequence, ids: Sequence[str]) -> str | None:
    """None when the pooled shortcut is exact for this run, else why not (one phrase).

    Parameters
    ----------
    interface, task
        The run's interface and task names (linearity is the interface spec's ``linear`` flag
        in :data:`featcache.fusion.INTERFACES`).
    readers
        One reader per upstream.
    ids
        Every utterance the run trains or scores on (frame counts are compared).
    """
    if task != "classify":
        return f"the {task} head does not pool frames"
    if not is_linear(interface):
        return f"interface {interface} is not linear per frame"
    if len(readers) > 1:
        counts = [r.num_frames[[r.index(u) for u in ids]] for r in readers]
        if any(not np.array_equal(counts[0], c) for c in counts[1:]):
            return "the upstreams' frame counts differ (frames are resampled per utterance)"
    return None


class PooledDataset(SplitDataset):
    """One item per utterance holding its pooled means as a one-frame utterance ``(1, L_i, D_i)``.

    ``lengths`` are the real (aligned) frame counts, so the loaders cut the same batches as over
    frames. The pooled rows are read once, here, and held in memory as ``(L_i, N, D_i)``
    tensors, so :meth:`batch` cuts a batch with one ``index_select`` per upstream (what
    :class:`featcache.train.loaders.IndexedLoader` serves, with no DataLoader and no per-item
    collation). Parameters as :class:`featcache.train.data.SplitDataset`.
    """

    in_memory = True

    def __init__(self, readers, ids, frames, targets, labels, layers=None) -> None:
        super().__init__(readers, ids, frames, targets, labels, layers)
        self.pooled = []  # per upstream (L_i, N, D_i) float32
        for reader, selected in zip(self.readers, self.layers, strict=True):
            rows = np.array([reader.index(u) for u in self.ids], dtype=np.int64)
            cols = slice(None) if selected is None else [reader.layers.index(k) for k in selected]
            means = reader.pooled()[rows][:, cols]  # (N, L_i, D_i) float32
            self.pooled.append(torch.from_numpy(np.ascontiguousarray(means.transpose(1, 0, 2))))

    def read_items(self, indices: Sequence[int]) -> dict[int, dict[str, Any]]:
        return {i: self[i] for i in indices}

    def __getitem__(self, index: int) -> dict[str, Any]:
        features = [p[:, index].unsqueeze(0) for p in self.pooled]  # list of (1, L_i, D_i)
        return {"id": self.ids[index], "features": features, "target": self.targets[index]}

    def batch(self, indices: Sequence[int], collate_targets) -> dict[str, Any]:
        """The batch of ``indices``, equal to ``collate`` of their items (one-frame utterances)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        features = [p.index_select(1, index).unsqueeze(2) for p in self.pooled]  # (L_i, B, 1, D_i)
        count = len(indices)
        batch = {"features": features, "lengths": torch.ones(count, dtype=torch.long),
                 "mask": torch.ones(count, 1, dtype=torch.bool),
                 "ids": [self.ids[i] for i in indices]}  # fmt: skip
        batch.update(collate_targets([self.targets[i] for i in indices]))
        return batch
