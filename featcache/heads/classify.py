"""``--task classify``: utterance classification, SUPERB ER/SID style.

Head: a linear projector to 256 dims per frame, mean pooling over valid frames, a linear
classifier. Metrics: accuracy and macro-F1. Labels seen only in dev/test count as errors.

The projector is affine and the masked mean is a convex combination of frames (weights summing
to one), so ``mean_t(W x_t + b) = W mean_t(x_t) + b``: the head pools first and projects one
vector per utterance instead of ``T`` frames (an utterance with no valid frame pools to zero
either way). ``ClassifyHead.forward_per_frame`` is the per-frame order, kept as the reference.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from featcache.errors import ConfigError
from featcache.heads.base import Task, masked_mean
from featcache.heads.metrics import accuracy, macro_f1

UNKNOWN = -100  # target of a label absent from training (ignored by the loss, always wrong)


class ClassifyHead(nn.Module):
    """Projector -> masked mean pooling -> linear classifier."""

    def __init__(self, input_dim: int, num_classes: int, projector_dim: int = 256) -> None:
        super().__init__()
        self.projector = nn.Linear(input_dim, projector_dim)
        self.classifier = nn.Linear(projector_dim, num_classes)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = masked_mean(features, mask)  # (B, D)
        valid = mask.any(dim=1, keepdim=True).to(pooled.dtype)  # (B, 1)
        projected = F.linear(pooled, self.projector.weight) + self.projector.bias * valid
        return self.classifier(projected)  # (B, 256) -> (B, C)

    def forward_per_frame(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Project every frame, then pool (equal to :meth:`forward` within float rounding)."""
        projected = self.projector(features)  # (B, T, 256)
        return self.classifier(masked_mean(projected, mask))  # (B, C)


class ClassifyTask(Task):
    main_metric = "accuracy"
    higher_is_better = True

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.classes: list[str] = []

    def fit(self, values: list[Any]) -> ClassifyTask:
        present = sorted({str(v) for v in values if v is not None})
        if len(present) < 2:
            raise ConfigError(
                f"--label {self.label}: the training split has {len(present)} distinct value(s); "
                "classification needs at least 2 (check the label field and --split-field)"
            )
        self.classes = present
        self._index = {c: i for i, c in enumerate(self.classes)}
        return self

    def encode(self, value: Any) -> int:
        return self._index.get(str(value), UNKNOWN)

    def collate(self, targets: list[int]) -> dict[str, torch.Tensor]:
        return {"target": torch.tensor(targets, dtype=torch.long)}

    def build_head(self, input_dim: int) -> nn.Module:
        return ClassifyHead(input_dim, len(self.classes))

    def loss(self, outputs: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        return F.cross_entropy(outputs.float(), batch["target"], ignore_index=UNKNOWN)

    def decode(self, outputs: torch.Tensor, batch: dict[str, Any]) -> list[str]:
        return [self.classes[i] for i in outputs.argmax(dim=-1).tolist()]

    def score(self, refs: list[Any], preds: list[Any]) -> dict[str, float]:
        refs = [str(r) for r in refs]
        return {"accuracy": accuracy(refs, preds), "macro_f1": macro_f1(refs, preds)}

    def state(self) -> dict[str, Any]:
        return {"classes": self.classes}

    def load_state(self, state: dict[str, Any]) -> ClassifyTask:
        self.classes = list(state["classes"])
        self._index = {c: i for i, c in enumerate(self.classes)}
        return self
