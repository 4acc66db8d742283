"""Manifests: loading, canonical form, and validation reporting every defect by line."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from featcache.errors import ManifestError
from featcache.manifest import Manifest, validate_manifest, write_manifest
from featcache.testing.corpus import make_tone_corpus, write_wav


def test_load_resolves_relative_paths_and_fields(tmp_path):
    m = make_tone_corpus(tmp_path, utterances=6, classes=2)
    assert len(m) == 6 and m.ids()[0] == "utt000"
    u = m["utt001"]
    assert u.audio == str((tmp_path / "wav" / "utt001.wav").resolve())
    assert u.get("label") == "class1" and u.split == "train" and u.line == 2
    assert len(m.split("dev", "test")) == sum(s in ("dev", "test") for s in m.labels("split"))


def test_canonical_bytes_and_sha_are_stable(tmp_path):
    m = make_tone_corpus(tmp_path, utterances=4)
    copy = tmp_path / "copy" / "manifest.jsonl"
    m.write(copy)
    again = Manifest.load(copy)  # absolute paths now
    assert again.to_jsonl() == m.to_jsonl() and again.sha256() == m.sha256()


def test_gzip_manifest_loads(tmp_path):
    make_tone_corpus(tmp_path, utterances=3)
    data = (tmp_path / "manifest.jsonl").read_bytes()
    (tmp_path / "m.jsonl.gz").write_bytes(gzip.compress(data))
    assert Manifest.load(tmp_path / "m.jsonl.gz").ids() == ["utt000", "utt001", "utt002"]


def _six_defects(tmp_path):
    good = write_wav(tmp_path / "good.wav", np.zeros(16000, np.float32) + 0.1)
    write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    (tmp_path / "notaudio.wav").write_text("this is not audio")
    lines = [
        json.dumps({"id": "ok1", "audio": "good.wav"}),  # 1 fine
        '{"id": "broken", "audio": ',  # 2 bad JSON
        json.dumps({"audio": "good.wav"}),  # 3 missing id
        json.dumps({"id": "ok1", "audio": "good.wav"}),  # 4 duplicate id
        json.dumps({"id": "gone", "audio": "missing.wav"}),  # 5 missing file
        json.dumps({"id": "hollow", "audio": "empty.wav"}),  # 6 empty audio
        json.dumps({"id": "junk", "audio": "notaudio.wav"}),  # 7 unreadable
        json.dumps({"id": "late", "audio": str(good), "start": 0.5, "duration": 2.0}),  # 8 segment
        json.dumps({"id": "neg", "audio": "good.wav", "start": -1}),  # 9 negative start
        json.dumps({"id": "noaudio"}),  # 10 missing audio
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_validate_reports_every_defect_with_its_line(tmp_path):
    problems = validate_manifest(_six_defects(tmp_path))
    by_line = {p.line: str(p) for p in problems}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert "bad JSON" in by_line[2] and "'id'" in by_line[3] and "duplicate" in by_line[4]
    assert "not found" in by_line[5] and "empty" in by_line[6] and "decode" in by_line[7]
    assert "past the end" in by_line[8] and "negative" in by_line[9] and "'audio'" in by_line[10]
    assert all("bad.jsonl:" in s for s in by_line.values())


def test_load_refuses_a_broken_manifest_with_a_pointer_to_validate(tmp_path):
    with pytest.raises(ManifestError, match=r"featcache manifest validate"):
        Manifest.load(_six_defects(tmp_path))


def test_write_manifest_is_atomic_and_round_trips(tmp_path):
    write_wav(tmp_path / "a.wav", np.zeros(1600, np.float32))
    path = write_manifest([{"id": "a", "audio": "a.wav", "speaker": "x"}], tmp_path / "m.jsonl")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert Manifest.load(path)["a"].get("speaker") == "x"


def test_bom_and_crlf_manifest_loads(tmp_path):
    """Windows editors write a byte-order mark and CRLF line ends; both are harmless."""
    write_wav(tmp_path / "a.wav", np.zeros(1600, np.float32) + 0.1)
    lines = [json.dumps({"id": i, "audio": "a.wav"}) for i in ("a", "b")]
    path = tmp_path / "win.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    assert Manifest.load(path).ids() == ["a", "b"]
    assert validate_manifest(path) == []


def test_non_utf8_line_is_reported_with_its_line_number(tmp_path):
    write_wav(tmp_path / "a.wav", np.zeros(1600, np.float32) + 0.1)
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        json.dumps({"id": "a", "audio": "a.wav"}).encode()
        + b'\n{"id": "caf\xe9", "audio": "a.wav"}\n'
        + json.dumps({"id": "b", "audio": "missing.wav"}).encode()
        + b"\n"
    )
    problems = validate_manifest(path)
    assert [p.line for p in problems] == [2, 3]
    assert "not UTF-8" in problems[0].message and "0xe9" in problems[0].message


@pytest.mark.parametrize("kind", ["folder", "binary"])
def test_a_folder_or_binary_file_is_not_a_manifest(tmp_path, kind):
    if kind == "folder":
        path = tmp_path
    else:
        path = write_wav(tmp_path / "a.wav", np.zeros(1600, np.float32) + 0.1)
    with pytest.raises(ManifestError, match="folder; give the .jsonl|binary data") as info:
        Manifest.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_stats_tabulate_integer_classes_and_summarise_scores(tmp_path):
    from featcache.manifest_stats import format_stats, manifest_stats

    write_wav(tmp_path / "a.wav", np.zeros(1600, np.float32) + 0.1)
    rows = [
        {"id": "a", "split": "train", "emotion": 0, "score": 0.5},
        {"id": "b", "split": "validation", "emotion": 1, "score": 1.5},
        {"id": "c", "split": "validation", "emotion": 1, "score": 4.0},
    ]
    path = tmp_path / "m.jsonl"
    write_manifest([{**r, "audio": "a.wav"} for r in rows], path)
    text = format_stats(manifest_stats(path))
    assert "label 'emotion': 2 value(s)" in text
    assert "numeric 'score': 3 value(s), min 0.5, mean 2, max 4" in text
    table = text[text.index("label 'emotion'") :].splitlines()[1:4]
    # columns line up under their headers, even for split names longer than the counts' width
    assert table[0].endswith("train  validation")
    assert [len(row) for row in table] == [len(table[0])] * 3
    assert table[1].split() == ["1", "2", "0", "2"]
    assert "... and 2 more" in format_stats(manifest_stats(path), max_values=0)
