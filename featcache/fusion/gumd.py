"""``gumd``: per-dimension layer selection with the Gumbel-softmax (Chiu et al., 2024).

Every feature dimension d has its own logits over the L layers. In training, each batch draws
Gumbel noise and mixes the layers with ``softmax((logits + g) / tau)`` per dimension; at
evaluation the choice is deterministic: the arg-max layer per dimension (``gumd``) or the
noise-free softmax (``gumd:soft``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from featcache.fusion.base import Interface


class GumbelDimSelect(Interface):
    """Per-dimension Gumbel-softmax layer selection.

    Parameters
    ----------
    num_layers, hidden_size
        Shape of the input ``(L, B, T, D)``.
    eval_mode
        ``"argmax"`` (one layer per dimension) or ``"soft"`` at evaluation.
    tau
        Gumbel-softmax temperature.
    """

    def __init__(
        self, num_layers: int, hidden_size: int, eval_mode: str = "argmax", tau: float = 1.0
    ) -> None:
        super().__init__()
        if eval_mode not in ("argmax", "soft"):
            raise ValueError(f"eval_mode must be 'argmax' or 'soft', not {eval_mode!r}")
        self.logits = nn.Parameter(torch.zeros(num_layers, hidden_size))
        self.eval_mode = eval_mode
        self.tau = tau
        self.output_dim = hidden_size

    def selection(self) -> torch.Tensor:
        """Mixing weights ``(L, D)``: noisy in training, deterministic in eval mode."""
        if self.training:
            return F.gumbel_softmax(self.logits, tau=self.tau, hard=False, dim=0)
        if self.eval_mode == "soft":
            return torch.softmax(self.logits / self.tau, dim=0)
        index = self.logits.argmax(dim=0, keepdim=True)  # (1, D)
        return torch.zeros_like(self.logits).scatter_(0, index, 1.0)

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        w = self.selection().to(x.dtype)  # (L, D)
        return torch.einsum("ld,lbtd->btd", w, x)  # (B, T, D)
