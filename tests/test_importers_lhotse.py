"""lhotse manifests written by lhotse itself import into manifests that validate."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from featcache.audio import load_utterance
from featcache.errors import ManifestError
from featcache.importers import import_manifest
from featcache.manifest import validate_manifest

lhotse = pytest.importorskip("lhotse")


def _wav(path: Path, seconds: float, sr: int = 16000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    sf.write(path, 0.1 * rng.standard_normal((int(seconds * sr), channels)).astype("float32"), sr)
    return path


@pytest.fixture
def corpus(tmp_path: Path):
    """Two recordings (mono 16 kHz wav, stereo 8 kHz flac) and three supervisions, via lhotse."""
    a = _wav(tmp_path / "audio" / "a.wav", 3.0)
    b = _wav(tmp_path / "audio" / "b.flac", 2.0, sr=8000, channels=2)
    recordings = lhotse.RecordingSet.from_recordings(
        [lhotse.Recording.from_file(a), lhotse.Recording.from_file(b, recording_id="rec-b")]
    )
    sups = lhotse.SupervisionSet.from_segments(
        [
            lhotse.SupervisionSegment(
                id="a-1",
                recording_id="a",
                start=0.5,
                duration=1.0,
                channel=0,
                text="hello",
                speaker="s1",
                language="English",
                custom={"emotion": "hap", "split": "train"},
            ),
            lhotse.SupervisionSegment(
                id="a-2",
                recording_id="a",
                start=1.5,
                duration=1.5,
                channel=0,
                text="there",
                speaker="s2",
                gender="F",
            ),
            lhotse.SupervisionSegment(
                id="b-1",
                recording_id="rec-b",
                start=0.25,
                duration=1.5,
                channel=1,
                text="bye",
                speaker="s3",
            ),
        ]
    )
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    recordings.to_file(manifests / "corpus_recordings_all.jsonl.gz")
    sups.to_file(manifests / "corpus_supervisions_all.jsonl.gz")
    cuts = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=sups)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    cuts.trim_to_supervisions().to_file(tmp_path / "trimmed_cuts.jsonl.gz")
    return tmp_path


def _check(manifest, out):
    assert validate_manifest(out) == []
    assert manifest.ids() == ["a-1", "a-2", "b-1"]
    a1, a2, b1 = manifest
    assert (a1.start, a1.duration, a1.channel) == (0.5, 1.0, None)  # mono file: no channel needed
    assert (a2.start, a2.duration) == (1.5, 1.5)
    assert (b1.start, b1.duration, b1.channel) == (0.25, 1.5, 1)
    assert manifest.labels("text") == ["hello", "there", "bye"]
    assert manifest.labels("speaker") == ["s1", "s2", "s3"]
    assert manifest.labels("language") == ["English", None, None]
    assert manifest.labels("gender") == [None, "F", None]
    assert manifest.labels("emotion") == ["hap", None, None]
    assert manifest.labels("split") == ["train", None, None]
    assert [len(load_utterance(u)) for u in manifest] == [16000, 24000, 24000]


def test_recordings_and_supervisions(corpus: Path):
    out = corpus / "out.jsonl"
    manifest = import_manifest(
        "lhotse", corpus / "manifests" / "corpus_recordings_all.jsonl.gz", out
    )
    _check(manifest, out)
    # the folder form finds the pair by name
    again = import_manifest("lhotse", corpus / "manifests", corpus / "again.jsonl")
    assert again.to_jsonl() == manifest.to_jsonl()


@pytest.mark.parametrize("name", ["cuts.jsonl.gz", "trimmed_cuts.jsonl.gz"])
def test_cuts(corpus: Path, name: str):
    out = corpus / "out.jsonl.gz"
    manifest = import_manifest("lhotse", corpus / name, out)
    _check(manifest, out)
    with gzip.open(out, "rt") as f:
        audio = [json.loads(line)["audio"] for line in f]
    assert audio == ["audio/a.wav", "audio/a.wav", "audio/b.flac"]  # inside OUT's folder


def test_relative_sources_resolve_against_the_manifest_folder(tmp_path: Path, monkeypatch):
    corpus = tmp_path / "corpus"
    _wav(corpus / "x.wav", 1.0)
    monkeypatch.chdir(corpus)
    lhotse.CutSet.from_manifests(
        recordings=lhotse.RecordingSet.from_recordings([lhotse.Recording.from_file("x.wav")])
    ).to_file(corpus / "cuts.jsonl")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "elsewhere" / "m.jsonl"
    manifest = import_manifest("lhotse", corpus / "cuts.jsonl", out, split="test")
    (utt,) = manifest  # a cut without supervisions is one utterance
    assert utt.audio == str(corpus / "x.wav")
    assert (utt.duration, utt.split) == (1.0, "test")
    assert validate_manifest(out) == []


def test_mixed_cuts_and_bad_lines_name_file_and_line(corpus: Path):
    cuts = lhotse.CutSet.from_file(corpus / "cuts.jsonl.gz")
    padded = cuts.pad(duration=4.0)  # a MixedCut: audio plus padding
    padded.to_file(corpus / "padded.jsonl.gz")
    with pytest.raises(ManifestError, match=r"padded\.jsonl\.gz:1: MixedCut"):
        import_manifest("lhotse", corpus / "padded.jsonl.gz", corpus / "m.jsonl")
    with gzip.open(corpus / "cuts.jsonl.gz", "rt") as f:
        lines = f.read().splitlines()
    (corpus / "broken.jsonl").write_text(lines[0] + "\n{not json\n")
    with pytest.raises(ManifestError, match=r"broken\.jsonl:2: bad JSON"):
        import_manifest("lhotse", corpus / "broken.jsonl", corpus / "m.jsonl")
    assert not (corpus / "m.jsonl").exists()
