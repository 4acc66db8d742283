"""Alignment of several upstreams before multi-model fusion (Shih & Harwath, arXiv 2511.08389).

Models differ in frame rate (fbank 100 frames/s, SSL models 50), layer count (13 for base, 25 for
large) and hidden size (768, 1024). The paper aligns them by linear interpolation to the highest
frame rate and the largest layer count; hidden sizes are interpolated too (as the paper) or mapped by
a learned per-model projection (``align_dim="project"``).

Time uses frame-centre interpolation (``align_corners=False``): frame ``j`` of a 50 frames/s model
covers the time ``(j + 0.5) / 50``, so a quantity linear in time stays exactly linear after
upsampling (away from the first and last frame, where values are held). Layers and hidden
dimensions use end-point interpolation (``align_corners=True``): the first and last layers of every
model line up, so 5 layers spread evenly over 13.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def interpolate_time(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Resample ``x`` of shape ``(L, B, T, D)`` to ``num_frames`` frames by linear interpolation."""
    num_layers, batch, frames, dim = x.shape
    if frames == num_frames:
        return x
    y = x.permute(0, 1, 3, 2).reshape(num_layers * batch, dim, frames)  # (L*B, D, T)
    y = F.interpolate(y, size=num_frames, mode="linear", align_corners=False)  # (L*B, D, T')
    return y.reshape(num_layers, batch, dim, num_frames).permute(0, 1, 3, 2)  # (L, B, T', D)


def interpolate_layers(x: torch.Tensor, num_layers: int) -> torch.Tensor:
    """Resample ``x`` of shape ``(L, B, T, D)`` to ``num_layers`` layers; first and last stay."""
    layers, batch, frames, dim = x.shape
    if layers == num_layers:
        return x
    y = x.reshape(layers, batch * frames * dim).transpose(0, 1).unsqueeze(1)  # (B*T*D, 1, L)
    if layers == 1:
        y = y.expand(-1, -1, num_layers)  # one layer: repeat it
    else:
        y = F.interpolate(y, size=num_layers, mode="linear", align_corners=True)  # (B*T*D, 1, L')
    return y.squeeze(1).transpose(0, 1).reshape(num_layers, batch, frames, dim)  # (L', B, T, D)


def interpolate_hidden(x: torch.Tensor, hidden_size: int) -> torch.Tensor:
    """Resample the feature axis of ``x`` ``(L, B, T, D)`` to ``hidden_size`` by interpolation."""
    layers, batch, frames, dim = x.shape
    if dim == hidden_size:
        return x
    y = x.reshape(layers * batch * frames, 1, dim)  # (L*B*T, 1, D)
    if dim == 1:
        y = y.expand(-1, -1, hidden_size)
    else:
        y = F.interpolate(y, size=hidden_size, mode="linear", align_corners=True)  # (L*B*T, 1, D')
    return y.reshape(layers, batch, frames, hidden_size)  # (L, B, T, D')


def resample_frames(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Resample one utterance ``(T, L, D)`` (as stored in a cache) to ``num_frames`` frames."""
    y = interpolate_time(x.permute(1, 0, 2).unsqueeze(1), num_frames)  # (L, 1, T', D)
    return y.squeeze(1).permute(1, 0, 2)  # (T', L, D)


class Aligner(nn.Module):
    """Bring several models' hidden states to one frame count, layer count and hidden size.

    Parameters
    ----------
    shapes
        ``(num_layers, hidden_size)`` of each model, in input order.
    align_dim
        ``"interpolate"`` (the paper) or ``"project"`` (a learned ``Linear(D_i, D_max)`` per model
        whose hidden size differs from the largest).
    align_layers
        Interpolate every model to the largest layer count (False keeps each model's own).
    """

    def __init__(
        self,
        shapes: list[tuple[int, int]],
        align_dim: str = "interpolate",
        align_layers: bool = True,
    ) -> None:
        super().__init__()
        if align_dim not in ("interpolate", "project"):
            raise ValueError(f"align_dim must be 'interpolate' or 'project', not {align_dim!r}")
        self.shapes = [tuple(s) for s in shapes]
        self.align_dim = align_dim
        self.num_layers = max(layers for layers, _ in self.shapes)
        self.hidden_size = max(dim for _, dim in self.shapes)
        self.layer_counts = [self.num_layers if align_layers else n for n, _ in self.shapes]
        self.projections = nn.ModuleList(
            nn.Linear(dim, self.hidden_size)
            if align_dim == "project" and dim != self.hidden_size
            else nn.Identity()
            for _, dim in self.shapes
        )

    def forward(self, hidden: list[torch.Tensor]) -> list[torch.Tensor]:
        """Align ``list[(L_i, B, T_i, D_i)]`` to ``list[(L, B, T, D)]``, T the largest T_i."""
        num_frames = max(x.shape[2] for x in hidden)
        aligned = []
        for x, layers, proj in zip(hidden, self.layer_counts, self.projections, strict=True):
            x = interpolate_time(x, num_frames)  # (L_i, B, T, D_i)
            x = interpolate_layers(x, layers)  # (L, B, T, D_i)
            if self.align_dim == "project":
                x = proj(x)  # (L, B, T, D)
            else:
                x = interpolate_hidden(x, self.hidden_size)  # (L, B, T, D)
            aligned.append(x)
        return aligned
