"""``cls``: one Transformer layer over the layer axis, read out at a learnable CLS token.

Every frame is a sequence of its L layer vectors, preceded by a learned CLS vector; a learned
position embedding per slot tells the layers apart (attention alone is order-blind). The CLS
output is the frame's fused feature (arXiv 2406.12209).
"""

from __future__ import annotations

import torch
from torch import nn

from featcache.fusion.base import Interface


def _num_heads(dim: int) -> int:
    return next(h for h in (8, 4, 2, 1) if dim % h == 0)


class ClsTransformer(Interface):
    """Transformer over layers with a CLS token.

    Parameters
    ----------
    num_layers, hidden_size
        Shape of the input ``(L, B, T, D)``.
    """

    def __init__(self, num_layers: int, hidden_size: int) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(hidden_size))
        self.position = nn.Parameter(torch.zeros(num_layers + 1, hidden_size))
        nn.init.normal_(self.position, std=0.02)
        self.layer = nn.TransformerEncoderLayer(
            hidden_size,
            _num_heads(hidden_size),
            dim_feedforward=2 * hidden_size,
            dropout=0.0,
            batch_first=True,
        )
        self.output_dim = hidden_size

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        num_layers, batch, frames, dim = x.shape
        seq = x.permute(1, 2, 0, 3).reshape(batch * frames, num_layers, dim)  # (B*T, L, D)
        cls = self.cls.to(x.dtype).expand(batch * frames, 1, dim)  # (B*T, 1, D)
        seq = torch.cat([cls, seq], dim=1) + self.position.to(x.dtype)  # (B*T, L+1, D)
        out = self.layer(seq)[:, 0]  # (B*T, D)
        return out.reshape(batch, frames, dim)  # (B, T, D)
