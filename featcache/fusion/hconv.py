"""``hconv``: hierarchical convolution over the layer axis (Shih & Harwath, arXiv 2406.12209).

Time is not convolved. Each frame's ``(D, L)`` matrix (D channels, L layers) goes through
``max(1, floor(log3 L))`` ``Conv1d`` layers with kernel 5, stride 3 and padding 2 over the layer
axis, each followed by a ReLU (the last one too), without normalisation or residual connections.
Every conv maps D -> D except the last, which maps D -> D // L_final, where L_final is the layer
axis length after all convs; the output is flattened to ``(D // L_final) * L_final`` features.

For 13 layers x 768: layers 13 -> 5 -> 2, output 768, 4,424,832 parameters.
For 25 layers x 1024: layers 25 -> 9 -> 3, output 1023.

The parameters are ``nn.Conv1d`` modules (checkpoints keep the names ``convs.0.weight`` ...),
but :meth:`HConv.fuse` does not call ``Conv1d`` on ``B*T`` sequences of 5-25 positions. It pads
the layer axis, unfolds it into the ``L_out`` windows of 5 layers that the kernel sees, and
applies each conv as one dense matmul ``(L_out, B*T, D*5) @ (D*5, D_out)``: the same sums of
products (equal to ``Conv1d`` within float rounding, see ``tests/test_fusion_hconv_fast.py``),
on the frame-major layout the cache delivers, without ``Conv1d``'s transpose to ``(B*T, D, L)``.
``benchmarks/fusion_hconv.py`` measures both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
        y = x.reshape(num_layers, batch * frames, dim)  # (L, N, D), N = B*T
        for conv in self.convs[::2]:
            y = F.relu(conv_as_matmul(y, conv))  # (L_out, N, C_out)
        y = y.permute(1, 2, 0)  # (N, D // L_final, L_final), Conv1d's output order
        return y.reshape(batch, frames, self.output_dim)  # (B, T, (D // L_final) * L_final)

    def fuse_conv1d(self, x: torch.Tensor) -> torch.Tensor:
        """The same output through ``nn.Conv1d`` (the reference the tests and benchmark use)."""
        num_layers, batch, frames, dim = x.shape
        y = x.permute(1, 2, 3, 0).reshape(batch * frames, dim, num_layers)  # (B*T, D, L)
        y = self.convs(y)  # (B*T, D // L_final, L_final)
        return y.reshape(batch, frames, self.output_dim)  # (B, T, (D // L_final) * L_final)


def conv_as_matmul(y: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """``conv`` over the layer axis of ``y`` (L, N, C_in) as one matmul: (L_out, N, C_out).

    Output position j sees padded layers ``3j .. 3j+4``; ``unfold`` gathers them as
    ``(L_out, N, C_in, 5)``, whose flattening matches ``conv.weight.flatten(1)`` (C_in, 5).
    """
    padded = F.pad(y, (0, 0, 0, 0, PADDING, PADDING))  # (L + 4, N, C_in)
    windows = padded.unfold(0, KERNEL, STRIDE)  # (L_out, N, C_in, 5)
    length, count = windows.shape[:2]
    flat = windows.reshape(length, count, -1)  # (L_out, N, C_in * 5)
    return F.linear(flat, conv.weight.flatten(1), conv.bias)  # (L_out, N, C_out)
