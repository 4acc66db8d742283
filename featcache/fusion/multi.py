"""Multi-model fusion (Shih & Harwath, arXiv 2511.08389).

- :class:`SumHConv` (``hconv``, the paper's "HConv."): align every model (frames, layers, hidden
  size), add them element-wise layer by layer, then one :class:`HConv`.
- :class:`ConcatHConv` (``chconv``): align, concatenate along features ``(L, B, T, N*D)``, project
  ``N*D -> D`` (one linear shared by all layers and frames), then HConv.
- :class:`PerModelFusion` (the baselines ``ws`` and ``gumd``, and any other single-model
  interface): one interface per model on its own layers, outputs brought to one frame count,
  concatenated and projected to the largest hidden size. Per-model interfaces need no layer or
  hidden-size alignment, so each keeps its model's own layers (and its layer weights stay
  readable per upstream).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from featcache.fusion.align import Aligner, interpolate_time
from featcache.fusion.base import Interface
from featcache.fusion.hconv import HConv


class SumHConv(Interface):
    """Element-wise sum of the aligned models, then HConv.

    Parameters
    ----------
    shapes
        ``(num_layers, hidden_size)`` per model.
    align_dim
        ``"interpolate"`` or ``"project"`` (see :class:`Aligner`).
    """

    def __init__(self, shapes: list[tuple[int, int]], align_dim: str = "interpolate") -> None:
        super().__init__()
        self.align = Aligner(shapes, align_dim)
        self.hconv = HConv(self.align.num_layers, self.align.hidden_size)
        self.output_dim = self.hconv.output_dim

    def forward(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        summed = torch.stack(self.align(hidden)).sum(dim=0)  # (N, L, B, T, D) -> (L, B, T, D)
        return self.hconv.fuse(summed)  # (B, T, D_out)


class ConcatHConv(Interface):
    """Feature concatenation of the aligned models, a projection, then HConv.

    Parameters
    ----------
    shapes
        ``(num_layers, hidden_size)`` per model.
    align_dim
        ``"interpolate"`` or ``"project"`` (see :class:`Aligner`).
    """

    def __init__(self, shapes: list[tuple[int, int]], align_dim: str = "interpolate") -> None:
        super().__init__()
        self.align = Aligner(shapes, align_dim)
        dim = self.align.hidden_size
        self.proj = nn.Linear(len(shapes) * dim, dim)
        self.hconv = HConv(self.align.num_layers, dim)
        self.output_dim = self.hconv.output_dim

    def forward(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        joined = torch.cat(self.align(hidden), dim=-1)  # (L, B, T, N*D)
        return self.hconv.fuse(self.proj(joined))  # (L, B, T, D) -> (B, T, D_out)


class PerModelFusion(Interface):
    """One single-model interface per model, outputs concatenated and projected.

    Parameters
    ----------
    shapes
        ``(num_layers, hidden_size)`` per model.
    make
        Builds a single-model interface from ``(num_layers, hidden_size)``.
    """

    def __init__(
        self, shapes: list[tuple[int, int]], make: Callable[[int, int], Interface]
    ) -> None:
        super().__init__()
        self.per_model = nn.ModuleList(make(layers, dim) for layers, dim in shapes)
        total = sum(m.output_dim for m in self.per_model)
        self.output_dim = max(dim for _, dim in shapes)
        self.proj = nn.Linear(total, self.output_dim)

    def forward(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        num_frames = max(x.shape[2] for x in hidden)
        fused = [
            m.fuse(interpolate_time(x, num_frames))  # (B, T, D_i')
            for m, x in zip(self.per_model, hidden, strict=True)
        ]
        return self.proj(torch.cat(fused, dim=-1))  # (B, T, sum D_i') -> (B, T, D)

    def layer_weights(self) -> list[torch.Tensor] | None:
        weights = [m.layer_weights() for m in self.per_model]
        if any(w is None for w in weights):
            return None
        return [w[0] for w in weights]
