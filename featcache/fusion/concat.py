"""``concat``: concatenate all layers of each frame, then a linear projection back to D."""

from __future__ import annotations

import torch
from torch import nn

from featcache.fusion.base import Interface


class ConcatProject(Interface):
    """``Linear(L * D, D)`` over the concatenated layers.

    Parameters
    ----------
    num_layers, hidden_size
        Shape of the input ``(L, B, T, D)``.
    """

    def __init__(self, num_layers: int, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(num_layers * hidden_size, hidden_size)
        self.output_dim = hidden_size

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        num_layers, batch, frames, dim = x.shape
        y = x.permute(1, 2, 0, 3).reshape(batch, frames, num_layers * dim)  # (B, T, L*D)
        return self.proj(y)  # (B, T, D)
