"""The trained model: a fusion interface followed by a task head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class FusionModel(nn.Module):
    """``normalize`` (optional), ``interface(list[(L_i, B, T, D_i)]) -> (B, T, D)``, then
    ``head((B, T, D), mask)``.

    ``normalize`` is a :class:`featcache.train.normalize.Standardize` (buffers only, no
    parameters) or None for raw features.
    """

    def __init__(
        self, interface: nn.Module, head: nn.Module, normalize: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.normalize = normalize
        self.interface = interface
        self.head = head

    def forward(self, features: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            features = self.normalize(features, mask)  # list of (L_i, B, T, D_i)
        fused = self.interface(features)  # (B, T, D)
        return self.head(fused, mask)

    def param_counts(self) -> dict[str, int]:
        return {
            "interface": sum(p.numel() for p in self.interface.parameters()),
            "head": sum(p.numel() for p in self.head.parameters()),
        }


def move_batch(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors of a batch onto ``device`` (non-blocking from pinned memory)."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device, non_blocking=True)
        elif key == "features":
            out[key] = [x.to(device, non_blocking=True) for x in value]
        else:
            out[key] = value
    return out
