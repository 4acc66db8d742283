"""Feature standardisation before the fusion interface, fitted on the training split only.

Why: cached hidden states are used as stored, and their scales differ wildly between upstreams
and dimensions (log-mel filterbanks lie around -15..5 with a large negative mean; random-init or
late transformer layers can have a few dimensions of very large magnitude). The paper's
interfaces have no input normalisation: HConv's ReLU then zeroes most negative-mean inputs and
large inputs blow up the projector and head, so training stalls at one class or diverges. A
fixed per-(upstream, layer, dimension) affine standardisation ``(x - mean) / std`` fixes this
without changing any interface (it is the usual CMVN of speech front ends). It is:

- estimated from the TRAINING split only (dev/test never touch it), on a deterministic,
  evenly spaced sample of at most ``max_utterances`` utterances read through the cache reader
  (exactly the frames the model sees, after frame-rate alignment, which is affine per frame
  and therefore commutes with this standardisation), accumulated in float64;
- applied per upstream, before the interface and so before any multi-model alignment;
- held in module buffers, so ``best.pt``/``last.pt`` carry it: ``evaluate`` and a resume use the
  stored statistics instead of estimating them again, and DDP ranks (which all estimate the
  same numbers from the same sample) are kept identical by DDP's buffer broadcast from rank 0;
- re-applied to padded frames as zeros (padding stays zero, as without normalisation).

``--normalize none`` keeps the raw setting of the paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

MIN_STD = 1e-5  # dimensions more constant than this are only centred


def sample_indices(count: int, max_utterances: int) -> list[int]:
    """At most ``max_utterances`` indices evenly spaced over ``0..count-1`` (deterministic)."""
    if count <= max_utterances:
        return list(range(count))
    return np.linspace(0, count - 1, max_utterances).round().astype(int).tolist()


def estimate(dataset, max_utterances: int = 200) -> dict[str, Any]:
    """Per-upstream ``(L, D)`` mean and std over every frame of a sample of ``dataset``.

    Parameters
    ----------
    dataset
        The training :class:`featcache.train.data.CachedDataset`.
    max_utterances
        Most utterances read.

    Returns
    -------
    dict
        ``mean`` and ``std`` (lists of float32 ``(L_i, D_i)`` arrays), ``utterances`` and
        ``frames`` used.
    """
    indices = sample_indices(len(dataset), max_utterances)
    sums: list[np.ndarray] = []
    squares: list[np.ndarray] = []
    frames = 0
    read = getattr(dataset, "read_items", None)
    for start in range(0, len(indices), 64):  # grouped: one read per run of utterances
        chunk = indices[start : start + 64]
        items = read(chunk) if read else {i: dataset[i] for i in chunk}
        for i in chunk:
            features = items[i]["features"]  # list of (T, L_k, D_k)
            if not sums:
                sums = [np.zeros(x.shape[1:], np.float64) for x in features]
                squares = [np.zeros(x.shape[1:], np.float64) for x in features]
            for k, x in enumerate(features):
                x64 = x.numpy().astype(np.float64)
                sums[k] += x64.sum(axis=0)  # (L, D)
                squares[k] += (x64 * x64).sum(axis=0)
            frames += int(features[0].shape[0])
    means, stds = [], []
    for total, square in zip(sums, squares, strict=True):
        mean = total / max(frames, 1)
        var = np.maximum(square / max(frames, 1) - mean * mean, 0.0)
        std = np.sqrt(var)
        std[std < MIN_STD] = 1.0
        means.append(mean.astype(np.float32))
        stds.append(std.astype(np.float32))
    return {"mean": means, "std": stds, "utterances": len(indices), "frames": frames}


class Standardize(nn.Module):
    """``(x - mean) / std`` per upstream, layer and dimension; padded frames stay zero.

    Parameters
    ----------
    shapes
        ``(num_layers, hidden_size)`` per upstream; buffers start as the identity (mean 0,
        std 1) until :meth:`set_stats` or ``load_state_dict`` fills them.
    """

    def __init__(self, shapes: list[tuple[int, int]]) -> None:
        super().__init__()
        self.count = len(shapes)
        for k, (layers, dim) in enumerate(shapes):
            self.register_buffer(f"mean_{k}", torch.zeros(layers, dim))
            self.register_buffer(f"std_{k}", torch.ones(layers, dim))

    def set_stats(self, stats: dict[str, Any]) -> None:
        for k in range(self.count):
            getattr(self, f"mean_{k}").copy_(torch.from_numpy(np.asarray(stats["mean"][k])))
            getattr(self, f"std_{k}").copy_(torch.from_numpy(np.asarray(stats["std"][k])))

    def forward(self, features: list[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        keep = mask[None, :, :, None].to(features[0].dtype)  # (1, B, T, 1)
        out = []
        for k, x in enumerate(features):  # (L, B, T, D)
            mean = getattr(self, f"mean_{k}")[:, None, None, :]  # (L, 1, 1, D)
            std = getattr(self, f"std_{k}")[:, None, None, :]
            out.append((x - mean) / std * keep)  # (L, B, T, D)
        return out

    def describe(self) -> list[dict[str, float]]:
        """Per upstream: the range of the means and stds (for summary.json)."""
        rows = []
        for k in range(self.count):
            mean, std = getattr(self, f"mean_{k}"), getattr(self, f"std_{k}")
            rows.append({"mean_min": round(float(mean.min()), 4),
                         "mean_max": round(float(mean.max()), 4),
                         "std_min": round(float(std.min()), 4),
                         "std_max": round(float(std.max()), 4)})  # fmt: skip
        return rows
