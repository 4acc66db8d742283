"""``hconv``: hierarchical convolution over the layer axis (Shih & Harwath, arXiv 2406.12209).

Time is not convolved. Each frame's ``(D, L)`` matrix (D channels, L layers) goes through
``max(1, floor(log3 L))`` ``Conv1d`` layers with kernel 5, stride 3 and padding 2 over the layer
axis, each followed by a ReLU (the last one too), without normalisation or residual connections.
Every conv maps D -> D except the last, which maps D -> D // L_final, where L_final is the layer
axis length after all convs; the output is flattened to ``(D // L_final) * L_final`` features.

For 13 layers x 768: layers 13 -> 5 -> 2, output 768, 4,424,832 parameters.
For 25 layers x 1024: layers 25 -> 9 -> 3, output 1023.
"""

from __future__ import annotations

import torch
from torch import nn

from featcache.fusion.base import Interface

KERNEL, STRIDE, PADDING = 5, 3, 2


def num_convs(num_layers: int) -> int:
    """``max(1, floor(log3 L))``, in integers (floating log3(27) is not exactly 3)."""
    count, power = 0, 3
    while power <= num_layers:
        count += 1
        power *= 3
    return max(1, count)


def conv_length(length: int) -> int:
    """Layer-axis length after one conv with kernel 5, stride 3, padding 2."""
    return (length + 2 * PADDING - KERNEL) // STRIDE + 1


class HConv(Interface):
    """Hierarchical convolution over layers.

    Parameters
    ----------
    num_layers, hidden_size
        Shape of the input ``(L, B, T, D)``.
    """

    def __init__(self, num_layers: int, hidden_size: int) -> None:
        super().__init__()
        n = num_convs(num_layers)
        lengths = [num_layers]
        for _ in range(n):
            lengths.append(conv_length(lengths[-1]))
        final_length = lengths[-1]
        last_channels = hidden_size // final_length
        if last_channels < 1:
            raise ValueError(f"hconv needs hidden size >= {final_length}, got {hidden_size}")
        layers: list[nn.Module] = []
        for i in range(n):
            out_channels = last_channels if i == n - 1 else hidden_size
            layers += [nn.Conv1d(hidden_size, out_channels, KERNEL, STRIDE, PADDING), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.layer_lengths = lengths
        self.output_dim = last_channels * final_length

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        num_layers, batch, frames, dim = x.shape
        y = x.permute(1, 2, 3, 0).reshape(batch * frames, dim, num_layers)  # (B*T, D, L)
        y = self.convs(y)  # (B*T, D // L_final, L_final)
        return y.reshape(batch, frames, self.output_dim)  # (B, T, (D // L_final) * L_final)
