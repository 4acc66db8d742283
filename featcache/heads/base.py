"""What a task is: label encoding, a head module, a loss, decoding and metrics.

A task turns one label field of the manifest into training targets (``fit`` learns the label set
from the training split), builds a head that maps fused features ``(B, T, D)`` with their frame
mask to outputs, and scores predictions. Its ``state()`` (the label set) is stored in checkpoints
so ``featcache evaluate`` decodes exactly as training did.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Task:
    """Base class of tasks; see :class:`featcache.heads.classify.ClassifyTask` for an example.

    Parameters
    ----------
    label
        The manifest field holding the label (``speaker``, ``text``, ...).
    """

    name: str = ""  # set by build_task from the registry
    main_metric: str = ""  # the dev metric that selects the best checkpoint
    higher_is_better: bool = True
    tie_breakers: tuple[str, ...] = ()  # metrics that decide ties on main_metric, in order

    def __init__(self, label: str) -> None:
        self.label = label

    def fit(self, values: list[Any]) -> Task:
        """Learn the label set from the training labels; returns self."""
        raise NotImplementedError

    def label_warnings(self, values: list[Any]) -> list[str]:
        """Warnings about training labels that do not suit this task (none by default)."""
        return []

    def encode(self, value: Any) -> Any:
        """One label value -> its target (picklable; runs in DataLoader workers)."""
        raise NotImplementedError

    def collate(self, targets: list[Any]) -> dict[str, torch.Tensor]:
        """Targets of a batch -> tensors (merged into the batch dict)."""
        raise NotImplementedError

    def build_head(self, input_dim: int) -> nn.Module:
        """The head: ``forward(features (B, T, D), mask (B, T)) -> outputs``."""
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, outputs: torch.Tensor, batch: dict[str, Any]) -> list[Any]:
        """Outputs -> predictions in label space (class names, transcripts)."""
        raise NotImplementedError

    def score(self, refs: list[Any], preds: list[Any]) -> dict[str, float]:
        raise NotImplementedError

    def selection_key(self, metrics: dict[str, float]) -> tuple[float, ...]:
        """Dev metrics -> a tuple where larger is better: the main metric, then the tie-breakers.

        Every metric of one task runs the same way (all higher-is-better or all lower).
        """
        sign = 1.0 if self.higher_is_better else -1.0
        names = (self.main_metric, *self.tie_breakers)
        return tuple(sign * float(metrics[m]) for m in names if m in metrics)

    def is_better(self, metrics: dict[str, float], best: dict[str, float] | None) -> bool:
        """Whether dev ``metrics`` beat the ``best`` so far (ties broken by ``tie_breakers``)."""
        if best is None:
            return True
        return self.selection_key(metrics) > self.selection_key(best)

    def state(self) -> dict[str, Any]:
        """The learned label set, JSON-serialisable."""
        raise NotImplementedError

    def load_state(self, state: dict[str, Any]) -> Task:
        raise NotImplementedError


def masked_mean(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid frames: ``(B, T, D)`` with mask ``(B, T)`` -> ``(B, D)``."""
    weights = mask.to(features.dtype).unsqueeze(-1)  # (B, T, 1)
    return (features * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # (B, D)
