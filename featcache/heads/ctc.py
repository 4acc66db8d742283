"""``--task ctc``: character CTC recognition with a 2-layer BiLSTM, greedy decoding, WER/CER.

The character set is learned from the training transcripts (index 0 is the CTC blank); characters
absent from training are dropped from targets and counted as errors by WER/CER. Padded frames are
packed away so that the LSTM output of an utterance does not depend on its batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from featcache.errors import ConfigError
from featcache.heads.base import Task
from featcache.heads.metrics import cer, wer


def normalise_text(text: Any) -> str:
    return " ".join(str(text).lower().split())


class CTCHead(nn.Module):
    """2-layer bidirectional LSTM -> linear over characters + blank."""

    def __init__(self, input_dim: int, vocab_size: int, hidden_size: int = 256) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden_size, num_layers=2, bidirectional=True,
                            batch_first=True)  # fmt: skip
        self.output = nn.Linear(2 * hidden_size, vocab_size + 1)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            features.float(), lengths, batch_first=True, enforce_sorted=False
        )
        hidden, _ = self.lstm(packed)
        hidden, _ = nn.utils.rnn.pad_packed_sequence(
            hidden, batch_first=True, total_length=features.shape[1]
        )  # (B, T, 2H)
        return self.output(hidden)  # (B, T, V + 1)


class CTCTask(Task):
    main_metric = "wer"
    higher_is_better = False
    # a young CTC model often outputs no whole word right (WER stuck at 1.0) while its
    # characters improve: the lower CER wins a WER tie
    tie_breakers = ("cer",)

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.vocab: list[str] = []

    def fit(self, values: list[Any]) -> CTCTask:
        texts = [normalise_text(v) for v in values if v is not None]
        chars = sorted({c for t in texts for c in t})
        if not chars:
            raise ConfigError(
                f"--label {self.label}: no transcripts in the training split; "
                "CTC needs a text field (usually --label text)"
            )
        return self.load_state({"vocab": chars})

    def label_warnings(self, values: list[Any]) -> list[str]:
        """Warn when the label looks categorical (few distinct values of one word each)."""
        texts = [normalise_text(v) for v in values if v is not None]
        if not texts:
            return []
        distinct = len(set(texts))
        words = sorted(len(t.split()) for t in texts)
        median_words = words[len(words) // 2]
        if median_words <= 1 and distinct <= max(1, len(texts) // 2):
            return [
                f"warning: --label {self.label} does not look like a transcript ({distinct} "
                f"distinct values over {len(texts)} training utterances, median {median_words} "
                f"word); CTC will learn to spell the values; for a categorical label use "
                f"--task classify"
            ]
        return []

    def encode(self, value: Any) -> list[int]:
        text = normalise_text(value) if value is not None else ""
        return [self._index[c] for c in text if c in self._index]

    def collate(self, targets: list[list[int]]) -> dict[str, torch.Tensor]:
        flat = [t for target in targets for t in target]
        return {
            "target": torch.tensor(flat, dtype=torch.long),
            "target_lengths": torch.tensor([len(t) for t in targets], dtype=torch.long),
        }

    def build_head(self, input_dim: int) -> nn.Module:
        return CTCHead(input_dim, len(self.vocab))

    def loss(self, outputs: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        log_probs = outputs.float().log_softmax(dim=-1).transpose(0, 1)  # (T, B, V+1)
        return F.ctc_loss(
            log_probs,
            batch["target"],
            batch["lengths"],
            batch["target_lengths"],
            blank=0,
            zero_infinity=True,
        )

    def decode(self, outputs: torch.Tensor, batch: dict[str, Any]) -> list[str]:
        best = outputs.argmax(dim=-1).cpu()  # (B, T)
        texts = []
        for row, length in zip(best.tolist(), batch["lengths"].tolist(), strict=True):
            chars, previous = [], 0
            for index in row[:length]:
                if index != previous and index != 0:
                    chars.append(self.vocab[index - 1])
                previous = index
            texts.append(normalise_text("".join(chars)))
        return texts

    def score(self, refs: list[Any], preds: list[Any]) -> dict[str, float]:
        refs = [normalise_text(r) for r in refs]
        return {"wer": wer(refs, preds), "cer": cer(refs, preds)}

    def state(self) -> dict[str, Any]:
        return {"vocab": self.vocab}

    def load_state(self, state: dict[str, Any]) -> CTCTask:
        self.vocab = list(state["vocab"])
        self._index = {c: i + 1 for i, c in enumerate(self.vocab)}  # 0 = blank
        return self
