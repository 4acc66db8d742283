"""Kaldi data dirs made here (real audio files) import into manifests that validate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from featcache.audio import load_utterance
from featcache.errors import ManifestError
from featcache.importers import import_manifest
from featcache.importers.kaldi import parse_wav_entry
from featcache.manifest import Manifest, validate_manifest


def _wav(path: Path, seconds: float, sr: int = 16000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    data = 0.1 * rng.standard_normal((int(seconds * sr), channels)).astype("float32")
    sf.write(path, data, sr)
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """``s5/`` with ``wav/`` audio and ``data/train_clean`` written as Kaldi recipes do."""
    s5 = tmp_path / "s5"
    _wav(s5 / "wav" / "rec1.wav", 3.0)
    stereo = _wav(s5 / "wav" / "rec2.flac", 2.0, sr=8000, channels=2)
    data = s5 / "data" / "train_clean"
    _write(
        data / "wav.scp",
        "rec1 wav/rec1.wav\n"  # relative to the recipe folder, as Kaldi scripts write it
        f"rec2 sox {stereo} -t wav -r 16000 - remix 2 |\n",
    )
    _write(
        data / "segments",
        "spkA-utt1 rec1 0.00 1.25\nspkA-utt2 rec1 1.25 3.00\nspkB-utt3 rec2 0.50 -1\n",
    )
    _write(data / "text", "spkA-utt1 HELLO WORLD\nspkA-utt2 GOOD BYE\nspkB-utt3\n")
    _write(data / "utt2spk", "spkA-utt1 spkA\nspkA-utt2 spkA\nspkB-utt3 spkB\n")
    _write(data / "spk2gender", "spkA f\nspkB m\n")
    _write(data / "utt2lang", "spkA-utt1 en\nspkA-utt2 en\nspkB-utt3 de\n")
    _write(data / "utt2dur", "spkA-utt1 1.25\nspkA-utt2 1.75\nspkB-utt3 1.5\n")
    return data


def test_kaldi_dir_with_segments_imports_and_validates(recipe: Path, tmp_path: Path):
    out = tmp_path / "s5" / "manifests" / "train.jsonl"
    manifest = import_manifest("kaldi", recipe, out)

    assert validate_manifest(out) == []
    assert manifest.ids() == ["spkA-utt1", "spkA-utt2", "spkB-utt3"]
    u1, u2, u3 = manifest
    assert (u1.start, u1.duration) == (0.0, 1.25)
    assert (u2.start, u2.duration) == (1.25, 1.75)
    assert (u3.start, u3.duration, u3.channel) == (0.5, None, 1)  # remix 2 = second channel
    assert [u.get("text") for u in manifest] == ["HELLO WORLD", "GOOD BYE", ""]
    assert manifest.labels("speaker") == ["spkA", "spkA", "spkB"]
    assert manifest.labels("gender") == ["f", "f", "m"]
    assert manifest.labels("language") == ["en", "en", "de"]
    assert manifest.labels("split") == ["train"] * 3  # from the folder name train_clean
    assert "dur" not in manifest.fields()
    # segments load with the right length at 16 kHz
    assert len(load_utterance(u1)) == 20000
    assert len(load_utterance(u2)) == 28000
    assert len(load_utterance(u3)) == 24000  # 1.5 s of an 8 kHz file, resampled
    # audio outside OUT's folder is written absolute, and the file reloads identically
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(Path(r["audio"]).is_absolute() for r in lines)
    assert Manifest.load(out).to_jsonl() == manifest.to_jsonl()


def test_audio_inside_output_folder_stays_relative(recipe: Path, tmp_path: Path):
    out = tmp_path / "s5" / "train.jsonl.gz"
    import_manifest("kaldi", recipe, out, split="dev")
    manifest = Manifest.load(out)
    assert validate_manifest(out) == []
    assert manifest.labels("split") == ["dev"] * 3
    with __import__("gzip").open(out, "rt") as f:
        audio = [json.loads(line)["audio"] for line in f]
    assert audio == ["wav/rec1.wav", "wav/rec1.wav", "wav/rec2.flac"]


def test_without_segments_each_recording_is_an_utterance(tmp_path: Path):
    data = tmp_path / "data" / "eval"
    a = _wav(tmp_path / "a.wav", 0.5)
    _write(data / "wav.scp", f"uttA {a}\nuttB cat {a} |\n")
    manifest = import_manifest("kaldi", data, tmp_path / "m.jsonl")
    assert manifest.ids() == ["uttA", "uttB"]
    assert manifest["uttB"].audio == str(a)
    assert manifest["uttA"].duration is None and manifest["uttA"].split is None
    assert validate_manifest(tmp_path / "m.jsonl") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/d/a.wav", ("/d/a.wav", None)),
        ("cat /d/a.wav |", ("/d/a.wav", None)),
        ("sox /d/a.wav -t wav -r 16000 -c 1 - |", ("/d/a.wav", None)),
        ("sox /d/a.wav -c 1 -t wavpcm -|", ("/d/a.wav", None)),
        ("sox -q /d/a.flac -t wav - rate -v 16000 remix 1 |", ("/d/a.flac", 0)),
        ("flac -c -d -s /d/a.flac |", ("/d/a.flac", None)),
        ("/usr/bin/sph2pipe -f wav -p -c 2 /d/a.sph |", ("/d/a.sph", 1)),
    ],
)
def test_plain_file_reads_in_wav_scp(value, expected):
    assert parse_wav_entry(value, Path("wav.scp"), 1) == expected


@pytest.mark.parametrize(
    "value",
    [
        "sox /d/a.wav -t wav - speed 1.1 |",
        "sox -v 0.5 /d/a.wav -t wav - |",
        "ffmpeg -i /d/a.mp4 -f wav - |",
        "sph2pipe -f wav -t 1:2 /d/a.sph |",
        "cat /d/a.wav /d/b.wav |",
        "/d/feats.ark:1234",
    ],
)
def test_other_commands_are_rejected_naming_the_line(value, tmp_path: Path):
    data = tmp_path / "data"
    _write(data / "wav.scp", f"ok /d/ok.wav\nbad {value}\n")
    with pytest.raises(ManifestError, match=r"wav\.scp:2: "):
        import_manifest("kaldi", data, tmp_path / "m.jsonl")


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ("u1 rec1 0 1\nu2 rec1 0.5\n", r"segments:2: expected 'UTT REC START END'"),
        ("u1 rec1 0 1\nu2 rec9 0 1\n", r"segments:2: recording 'rec9' is not in"),
        ("u1 rec1 1.5 1.0\n", r"segments:1: end 1.0 is not after start 1.5"),
        (
            "u1 rec1 0 1\nu1 rec1 1 2\n",
            r"segments:2: duplicate utterance id 'u1' \(first at .*segments:1\)",
        ),
        ("u1 rec1 zero 1\n", r"segments:1: START/END must be seconds"),
    ],
)
def test_malformed_segments_name_file_and_line(segments, message, tmp_path: Path):
    data = tmp_path / "data"
    a = _wav(tmp_path / "a.wav", 2.0)
    _write(data / "wav.scp", f"rec1 {a}\n")
    _write(data / "segments", segments)
    with pytest.raises(ManifestError, match=message) as info:
        import_manifest("kaldi", data, tmp_path / "m.jsonl")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "m.jsonl").exists()


def test_missing_wav_scp_and_repeated_keys(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no wav.scp"):
        import_manifest("kaldi", tmp_path / "empty", tmp_path / "m.jsonl")
    data = tmp_path / "data"
    _write(data / "wav.scp", "r1 /a.wav\n")
    _write(data / "utt2spk", "r1 s1\nr1 s2\n")
    with pytest.raises(ManifestError, match=r"utt2spk:2: key 'r1' repeats line 1"):
        import_manifest("kaldi", data, tmp_path / "m.jsonl")
