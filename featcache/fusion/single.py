"""``last`` and ``layer:K``: use one hidden layer of one model, no parameters.

``layer:K`` names the model's layer K (0 = the embedding output); the registry turns it into a
position of the input's layer axis (:func:`featcache.fusion.registry.layer_position`), which is
what :class:`LayerSelect` takes.
"""

from __future__ import annotations

import torch

from featcache.fusion.base import Interface


class LayerSelect(Interface):
    """Pick one layer.

    Parameters
    ----------
    num_layers, hidden_size
        Shape of the input ``(L, B, T, D)``.
    index
        Position of the layer in the input's layer axis (``-1`` = the last).
    """

    def __init__(self, num_layers: int, hidden_size: int, index: int = -1) -> None:
        super().__init__()
        if not -num_layers <= index < num_layers:
            raise ValueError(f"layer position {index} outside 0..{num_layers - 1}")
        self.index = index
        self.output_dim = hidden_size

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.index]  # (L, B, T, D) -> (B, T, D)
