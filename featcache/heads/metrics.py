"""Task metrics computed here, without extra dependencies: accuracy, macro-F1, WER, CER."""

from __future__ import annotations

from collections.abc import Sequence


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def error_rate(refs: Sequence[Sequence], hyps: Sequence[Sequence]) -> float:
    """Total edit distance over total reference length (WER on word lists, CER on strings)."""
    errors = sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True))
    total = sum(len(r) for r in refs)
    return errors / max(total, 1)


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Word error rate over whitespace-separated words."""
    return error_rate([r.split() for r in refs], [h.split() for h in hyps])


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Character error rate (spaces count as characters)."""
    return error_rate([" ".join(r.split()) for r in refs], [" ".join(h.split()) for h in hyps])


def accuracy(refs: Sequence, preds: Sequence) -> float:
    """Fraction of exact matches."""
    return sum(r == p for r, p in zip(refs, preds, strict=True)) / max(len(refs), 1)


def macro_f1(refs: Sequence, preds: Sequence) -> float:
    """Unweighted mean of per-class F1 over the classes in the references or predictions.

    Summed in sorted class order: a float sum over a ``set`` depends on string hashing and
    differs in the last digit between identical runs.
    """
    classes = sorted(set(refs) | set(preds), key=lambda c: (type(c).__name__, str(c)))
    scores = []
    for c in classes:
        tp = sum(r == c and p == c for r, p in zip(refs, preds, strict=True))
        fp = sum(r != c and p == c for r, p in zip(refs, preds, strict=True))
        fn = sum(r == c and p != c for r, p in zip(refs, preds, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / max(len(scores), 1)
