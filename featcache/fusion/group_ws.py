"""``group-ws:K``: K weighted sums over contiguous groups of layers, concatenated and projected.

The L layers are split into K contiguous groups whose sizes differ by at most one (earlier groups
take the extra layers); each group has its own softmax over zero-initialised weights.
"""

from __future__ import annotations

import torch
from torch import nn

from featcache.fusion.base import Interface


def group_sizes(num_layers: int, groups: int) -> list[int]:
    """Sizes of ``groups`` contiguous groups covering ``num_layers`` layers."""
    base, extra = divmod(num_layers, groups)
    return [base + (i < extra) for i in range(groups)]


class GroupWeightedSum(Interface):
    """K group-wise weighted sums, concatenated (K * D), then ``Linear(K * D, D)``.

    Parameters
    ----------
    num_layers, hidden_size
        Shape of the input ``(L, B, T, D)``.
    groups
        K, between 1 and L.
    """

    def __init__(self, num_layers: int, hidden_size: int, groups: int) -> None:
        super().__init__()
        if not 1 <= groups <= num_layers:
            raise ValueError(f"group-ws needs 1 <= K <= {num_layers} layers, got K={groups}")
        self.sizes = group_sizes(num_layers, groups)
        self.weights = nn.ParameterList(nn.Parameter(torch.zeros(n)) for n in self.sizes)
        self.proj = nn.Linear(groups * hidden_size, hidden_size)
        self.output_dim = hidden_size

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        for chunk, w in zip(torch.split(x, self.sizes, dim=0), self.weights, strict=True):
            weights = torch.softmax(w, dim=0).to(x.dtype)  # (L_k,)
            parts.append(torch.einsum("l,lbtd->btd", weights, chunk))  # (B, T, D)
        return self.proj(torch.cat(parts, dim=-1))  # (B, T, K*D) -> (B, T, D)
