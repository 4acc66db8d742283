"""Task heads and metrics: padding-invariant heads, greedy CTC decoding, WER/CER/F1 by hand."""

from __future__ import annotations

import pytest
import torch

from featcache.errors import ConfigError
from featcache.heads import build_task
from featcache.heads.metrics import cer, edit_distance, macro_f1, wer


def test_edit_distance_and_error_rates():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a"]) == 1
    assert wer(["the cat sat", "a b"], ["the bat sat down", "a b"]) == pytest.approx(2 / 5)
    assert cer(["abc"], ["abd"]) == pytest.approx(1 / 3)
    assert cer(["ab  c"], ["ab c"]) == 0.0  # whitespace runs are one space


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    refs = ["a", "a", "b", "c", "c", "c", "b"]
    preds = ["a", "b", "b", "c", "a", "c", "c"]
    assert macro_f1(refs, preds) == pytest.approx(f1_score(refs, preds, average="macro"))


def test_classify_head_ignores_padding_and_scores():
    task = build_task("classify", "speaker").fit(["b", "a", "c", "a"])
    assert task.classes == ["a", "b", "c"] and task.encode("zzz") == -100
    head = task.build_head(8)
    assert sum(p.numel() for p in head.parameters()) == 8 * 256 + 256 + 256 * 3 + 3
    x = torch.randn(1, 5, 8)
    mask = torch.tensor([[True, True, True, False, False]])
    padded = x.clone()
    padded[:, 3:] = 1e3  # garbage in padded frames must not matter
    torch.testing.assert_close(head(x, mask), head(padded, mask))
    torch.testing.assert_close(head(x[:, :3], mask[:, :3]), head(x, mask))
    scores = task.score(["a", "b", "unseen"], ["a", "b", "a"])
    assert scores["accuracy"] == pytest.approx(2 / 3)


def test_classify_needs_two_classes():
    with pytest.raises(ConfigError, match="at least 2"):
        build_task("classify", "speaker").fit(["a", "a", None])


def test_ctc_encode_decode_and_padding_invariance():
    task = build_task("ctc", "text").fit(["Hello world", "hi"])
    assert task.vocab == [" ", "d", "e", "h", "i", "l", "o", "r", "w"]
    assert task.encode("hi!") == [4, 5]  # unknown '!' dropped
    # greedy decoding: argmax, collapse repeats, drop blanks (index 0)
    path = [4, 4, 0, 5, 5, 0, 0, 4]  # h h _ i i _ _ h
    logits = torch.full((1, 9, 10), -5.0)
    for t, k in enumerate(path):
        logits[0, t, k] = 5.0
    batch = {"lengths": torch.tensor([8])}
    assert task.decode(logits, batch) == ["hih"]
    head = task.build_head(6)
    x = torch.randn(2, 7, 6)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    out = head(x, mask)
    alone = head(x[1:, :4], mask[1:, :4])
    torch.testing.assert_close(out[1:, :4], alone)  # packed: padding does not leak backwards
    targets = task.collate([task.encode("hi"), task.encode("hello")])
    loss = task.loss(out, {"lengths": mask.sum(1), **targets})
    assert torch.isfinite(loss) and loss > 0


def test_unknown_task():
    with pytest.raises(ConfigError, match="unknown task"):
        build_task("regress", "x")


def test_ctc_wer_ties_are_broken_by_the_lower_cer():
    from featcache.heads.ctc import CTCTask

    task = CTCTask("text").fit(["the cat sat", "a dog ran"])
    refs = ["the cat sat", "a dog ran"]
    early = task.score(refs, ["xx", "y"])  # no word right, few characters
    later = task.score(refs, ["th ca sa", "b do ra"])  # no word right, most characters
    assert early["wer"] == later["wer"] == 1.0 and later["cer"] < early["cer"]
    assert task.is_better(later, early) and not task.is_better(early, later)
    assert not task.is_better(early, early)  # an equal score is no improvement
    better_wer = task.score(refs, ["the cat sat", "xx"])  # fewer word errors beat any CER
    assert better_wer["cer"] > later["cer"] and task.is_better(better_wer, later)


def test_classify_selects_on_accuracy_alone():
    from featcache.heads.classify import ClassifyTask

    task = ClassifyTask("speaker").fit(["a", "b"])
    assert task.is_better({"accuracy": 0.6, "macro_f1": 0.1}, {"accuracy": 0.5, "macro_f1": 0.9})
    assert not task.is_better(
        {"accuracy": 0.5, "macro_f1": 0.9}, {"accuracy": 0.5, "macro_f1": 0.1}
    )


def test_ctc_warns_when_the_label_is_not_text():
    from featcache.heads.ctc import CTCTask

    task = CTCTask("speaker")
    speakers = ["spk-a", "spk-b", "spk-c"] * 10
    (warning,) = task.label_warnings(speakers)
    assert "--label speaker does not look like a transcript" in warning and "3 distinct" in warning
    sentences = [f"the cat sat on mat {i}" for i in range(30)]
    assert task.label_warnings(sentences) == []
    one_word_utterances = [f"word{i}" for i in range(30)]  # isolated words: still text
    assert task.label_warnings(one_word_utterances) == []
