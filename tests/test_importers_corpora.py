"""Tiny fake layouts of IEMOCAP, LibriSpeech, VoxCeleb1 and ML-SUPERB import with the right labels
and splits, and their manifests validate against the real audio files written here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from featcache.errors import ConfigError, ManifestError
from featcache.importers import import_manifest
from featcache.manifest import Manifest, validate_manifest
from featcache.testing.layouts import IEMOCAP_EMOTIONS as EMOTIONS
from featcache.testing.layouts import fake_iemocap as _iemocap
from featcache.testing.layouts import fake_librispeech as _librispeech
from featcache.testing.layouts import fake_mlsuperb as _mlsuperb
from featcache.testing.layouts import fake_voxceleb1
from featcache.testing.layouts import write_text as _write


# --- IEMOCAP -----------------------------------------------------------------------------------
def test_iemocap_superb_four_classes_and_session_splits(tmp_path: Path):
    root = _iemocap(tmp_path)
    out = tmp_path / "er.jsonl"
    manifest = import_manifest("iemocap", root, out)
    assert validate_manifest(out) == []
    expected = [
        (f"Ses0{s}{'FM'[k]}_{'impro01' if k == 0 else 'script02_1'}_{'FM'[i % 2]}00{i}", e)
        for s in range(1, 6)
        for k in range(2)
        for i in range(4)
        if (e := EMOTIONS[(4 * k + i + s) % len(EMOTIONS)]) in ("neu", "hap", "exc", "ang", "sad")
    ]
    assert manifest.ids() == [utt for utt, _ in expected]
    assert manifest.labels("emotion") == ["hap" if e == "exc" else e for _, e in expected]
    assert set(manifest.labels("emotion")) == {"neu", "hap", "ang", "sad"}
    utt = manifest["Ses01F_impro01_M001"]
    assert (utt.get("session"), utt.get("speaker"), utt.get("gender")) == (1, "Ses01M", "M")
    assert (utt.get("act"), utt.get("dominance")) == ("improvised", 1.5)
    assert manifest["Ses02M_script02_1_F002"].get("act") == "scripted"
    # SUPERB fold: test = session 5, dev = 20% of the other sessions' utterances
    splits = Counter(manifest.labels("split"))
    train_sessions = [u for u in manifest if u.get("session") != 5]
    assert {u.split for u in manifest if u.get("session") == 5} == {"test"}
    assert splits["dev"] == round(0.2 * len(train_sessions))
    assert splits["train"] + splits["dev"] == len(train_sessions)
    # other folds and the same draw twice
    fold1 = import_manifest(
        "iemocap",
        root / "IEMOCAP_full_release",
        tmp_path / "f1.jsonl",
        test_session=1,
        dev_ratio=0.25,
        seed=3,
    )
    assert {u.get("session") for u in fold1.split("test")} == {1}
    again = import_manifest(
        "iemocap", root, tmp_path / "f1b.jsonl", test_session=1, dev_ratio=0.25, seed=3
    )
    assert again.labels("split") == fold1.labels("split")
    every = import_manifest("iemocap", root, tmp_path / "all.jsonl", all_emotions=True)
    assert {"fru", "xxx", "exc"} <= set(every.labels("emotion")) and len(every) == 40


def test_iemocap_bad_label_line_and_missing_audio(tmp_path: Path):
    root = _iemocap(tmp_path)
    table = (
        root
        / "IEMOCAP_full_release"
        / "Session2"
        / "dialog"
        / "EmoEvaluation"
        / "Ses02F_impro01.txt"
    )
    lines = table.read_text().splitlines()
    _write(table, "\n".join(lines[:3] + ["[1.0 - 2.0] broken line"] + lines[3:]))
    with pytest.raises(ManifestError, match=r"Ses02F_impro01\.txt:4: expected"):
        import_manifest("iemocap", root, tmp_path / "m.jsonl")
    _write(table, "\n".join(lines + ["[9.0 - 9.5]\tSes02F_impro01_F009\tang\t[1.0, 2.0, 3.0]"]))
    with pytest.raises(
        ManifestError, match=r"Ses02F_impro01\.txt:\d+: audio of Ses02F_impro01_F009 not found"
    ):
        import_manifest("iemocap", root, tmp_path / "m.jsonl")
    with pytest.raises(ConfigError, match="test-session"):
        import_manifest(
            "iemocap", tmp_path / "IEMOCAP_full_release", tmp_path / "m.jsonl", test_session=7
        )


# --- LibriSpeech -------------------------------------------------------------------------------
def test_librispeech_splits_text_speaker_chapter(tmp_path: Path):
    ls = _librispeech(tmp_path)
    out = tmp_path / "ls.jsonl"
    manifest = import_manifest("librispeech", ls, out)
    assert validate_manifest(out) == []
    assert manifest.ids() == [
        "84-1240-0000",
        "84-1240-0001",
        "1089-1240-0000",
        "1089-1240-0001",
        "103-1240-0000",
        "103-1240-0001",
    ]
    assert manifest.labels("split") == ["dev", "dev", "test", "test", "train", "train"]
    utt = manifest["103-1240-0001"]
    assert utt.get("text") == "TRAIN CLEAN 100 NUMBER 1"
    assert (utt.get("speaker"), utt.get("chapter"), utt.get("subset")) == (
        "103",
        "1240",
        "train-clean-100",
    )
    assert utt.audio.endswith("LibriSpeech/train-clean-100/103/1240/103-1240-0001.flac")
    subset = import_manifest(
        "librispeech", ls, tmp_path / "s.jsonl", subsets="train-clean-100,test-clean"
    )
    assert set(subset.labels("split")) == {"train", "test"}
    one = import_manifest("librispeech", ls / "dev-clean", tmp_path / "d.jsonl")
    assert one.ids() == ["84-1240-0000", "84-1240-0001"]
    with pytest.raises(ConfigError, match="train-other-500"):
        import_manifest("librispeech", ls, tmp_path / "x.jsonl", subsets="train-other-500")
    trans = ls / "dev-clean" / "84" / "1240" / "84-1240.trans.txt"
    _write(trans, trans.read_text() + "84-1240-0002 NO AUDIO\n")
    with pytest.raises(ManifestError, match=r"84-1240\.trans\.txt:3: no 84-1240-0002\.flac"):
        import_manifest("librispeech", ls, tmp_path / "x.jsonl")


# --- VoxCeleb1 ---------------------------------------------------------------------------------
def test_voxceleb1_identification_split(tmp_path: Path):
    vox = fake_voxceleb1(tmp_path)
    listing = (vox / "iden_split.txt").read_text().splitlines()
    out = tmp_path / "sid.jsonl"
    manifest = import_manifest("voxceleb1", vox, out)
    assert validate_manifest(out) == []
    assert manifest.ids()[:2] == ["id10001-yt1_1-00001", "id10001-yt1_0-00002"]
    assert manifest.labels("split") == ["train", "train", "dev", "test"] * 2
    assert manifest.labels("speaker") == ["id10001"] * 4 + ["id10002"] * 4
    assert manifest["id10002-yt2_1-00003"].get("video") == "yt2_1"
    _write(vox / "iden_split.txt", "\n".join(listing) + "\n4 id10001/x/00001.wav\n")
    with pytest.raises(
        ManifestError, match=r"iden_split\.txt:9: expected 'S SPEAKER/VIDEO/N\.wav'"
    ):
        import_manifest("voxceleb1", vox, out)
    (vox / "iden_split.txt").unlink()
    with pytest.raises(ManifestError, match="download iden_split.txt"):
        import_manifest("voxceleb1", vox, out)


# --- ML-SUPERB ---------------------------------------------------------------------------------
def test_mlsuperb_monolingual_and_multilingual(tmp_path: Path):
    root = _mlsuperb(tmp_path / "mlsuperb")
    out = tmp_path / "mono.jsonl"
    mono = import_manifest("mlsuperb", root, out, language="eng1", config="1h")
    assert validate_manifest(out) == []
    assert mono.ids() == [
        "mls_eng_1h_train_0",
        "mls_eng_1h_train_1",
        "mls_eng_10min_dev_0",
        "mls_eng_10min_test_0",
        "nchlt_eng_10min_test_0",
    ]
    assert mono.labels("split") == ["train", "train", "dev", "test", "test"]
    utt = mono["nchlt_eng_10min_test_0"]
    assert (utt.get("text"), utt.get("text_raw")) == ("HELLO  WORLD 0", "Hello, [noise] world 0!")
    assert (utt.get("language"), utt.get("dataset")) == ("eng", "nchlt")
    plain = import_manifest("mlsuperb", root, tmp_path / "eng.jsonl", language="eng")
    assert Counter(plain.labels("split")) == {"train": 2, "dev": 2, "test": 2}  # 10min default
    multi = import_manifest("mlsuperb", root, tmp_path / "multi.jsonl")
    assert Counter(multi.labels("language")) == {"eng": 6, "cmn": 3}
    assert [u.get("dataset") for u in multi.split("test")] == ["fleurs", "mls", "nchlt"]
    short = import_manifest("mlsuperb", root, tmp_path / "short.jsonl", max_duration=0.05)
    assert short.split("train").ids() == [] and len(short.split("test")) == 3
    with pytest.raises(ConfigError, match="deu"):
        import_manifest("mlsuperb", root, tmp_path / "x.jsonl", language="deu1")
    listing = root / "fleurs" / "cmn" / "transcript_10min_dev.txt"
    _write(listing, listing.read_text() + "lonely_id\n")
    with pytest.raises(ManifestError, match=r"transcript_10min_dev\.txt:2: expected 'UTT-ID LANG"):
        import_manifest("mlsuperb", root, tmp_path / "x.jsonl")


def test_cli_passes_corpus_options(tmp_path: Path, capsys):
    from featcache.cli.main import main

    root = _iemocap(tmp_path)
    out = tmp_path / "fold2.jsonl"
    main(
        [
            "manifest",
            "import",
            "iemocap",
            str(root),
            str(out),
            "--test-session",
            "2",
            "--all-emotions",
        ]
    )
    assert "wrote 40 utterances" in capsys.readouterr().out
    manifest = Manifest.load(out)
    assert {u.get("session") for u in manifest.split("test")} == {2}
    assert "fru" in manifest.labels("emotion")
