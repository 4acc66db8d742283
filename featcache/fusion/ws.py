"""``ws``: SUPERB's weighted sum of layers (softmax over zero-initialised weights).

``ws:ln`` first normalises each layer with a layer norm without affine parameters, as s3prl's
featurizer does with ``normalize=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from featcache.fusion.base import Interface


class WeightedSum(Interface):
    """Softmax-weighted sum over the layer axis.

    Parameters
    ----------
    num_layers, hidden_size
        Shape of the input ``(L, B, T, D)``.
    layer_norm
        Normalise every layer over its D features (no learned scale or bias) before the sum.
    """

    def __init__(self, num_layers: int, hidden_size: int, layer_norm: bool = False) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.layer_norm = layer_norm
        self.output_dim = hidden_size

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer_norm:
            x = F.layer_norm(x, x.shape[-1:])  # (L, B, T, D)
        w = torch.softmax(self.weights, dim=0).to(x.dtype)  # (L,)
        return torch.einsum("l,lbtd->btd", w, x)  # (B, T, D)

    def layer_weights(self) -> list[torch.Tensor]:
        return [torch.softmax(self.weights.detach().float(), dim=0)]
