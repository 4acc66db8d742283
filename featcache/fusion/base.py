"""The base class every fusion interface derives from."""

from __future__ import annotations

import torch
from torch import nn


class Interface(nn.Module):
    """Maps per-model hidden states ``list[(L_i, B, T_i, D_i)]`` to features ``(B, T, D_out)``.

    Subclasses set ``output_dim``. Single-model interfaces implement :meth:`fuse` on one model's
    ``(L, B, T, D)``; multi-model interfaces override :meth:`forward`.
    """

    output_dim: int

    def forward(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        if len(hidden) != 1:
            raise ValueError(f"{type(self).__name__} fuses one model, got {len(hidden)}")
        return self.fuse(hidden[0])

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        """Fuse one model's layers: ``(L, B, T, D) -> (B, T, D_out)``."""
        raise NotImplementedError

    def layer_weights(self) -> list[torch.Tensor] | None:
        """Softmax layer weights per model for weighted-sum interfaces, else None."""
        return None
