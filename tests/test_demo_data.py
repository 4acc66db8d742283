"""The synthesized demo corpus: labels a user can train on, and the same corpus for the same seed."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from featcache.audio import load_audio
from featcache.errors import ConfigError
from featcache.manifest import Manifest, validate_manifest


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "featcache.cli.main", *args], capture_output=True, text=True
    )


def test_same_seed_same_corpus_and_stats_show_the_labels(tmp_path, espeak):
    for name in ("a", "b"):
        done = _cli("demo-data", str(tmp_path / name), "--utterances", "24", "--seed", "7")
        assert done.returncode == 0, done.stderr
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    other = _cli("demo-data", str(tmp_path / "c"), "--utterances", "24", "--seed", "8")
    assert other.returncode == 0 and _digest(tmp_path / "c") != _digest(tmp_path / "a")

    m = Manifest.load(tmp_path / "a" / "manifest.jsonl")
    assert validate_manifest(tmp_path / "a" / "manifest.jsonl") == []
    assert len(set(m.labels("speaker"))) >= 6
    assert set(m.labels("style")) == {"neutral", "excited", "calm"}
    assert set(m.labels("language")) >= {"en", "es"}
    assert set(m.labels("split")) == {"train", "dev", "test"}
    assert all(isinstance(t, str) and len(t) > 10 for t in m.labels("text"))
    wav = load_audio(m.utterances[0].audio)
    assert len(wav) == pytest.approx(m.utterances[0].duration * 16000, abs=1)
    assert wav.std() > 0.01  # speech, not silence

    stats = _cli("manifest", "stats", str(tmp_path / "a" / "manifest.jsonl"))
    assert stats.returncode == 0, stats.stderr
    for expected in (
        "utterances    24",
        "label 'speaker'",
        "label 'style'",
        "label 'language'",
        "excited",
        "calm",
        "spk-m1",
        "text 'text'",
        "train",
    ):
        assert expected in stats.stdout


def test_styles_differ_in_pitch_and_speed(tmp_path, espeak):
    """The style label must be audible: excited is faster than calm for the same voice."""
    from featcache.demo_data import ESPEAK_VOICES, synthesize

    voice = ESPEAK_VOICES[0]
    text = "The bakery on the corner sells warm bread every morning."
    calm = synthesize(voice, text, "en", "calm", (0, 1), tmp_path)
    excited = synthesize(voice, text, "en", "excited", (0, 1), tmp_path)
    assert len(excited) < 0.8 * len(calm)
    assert excited.std() > calm.std()


def test_rerun_is_a_no_op_and_a_foreign_folder_is_refused(tmp_path, espeak):
    from featcache.demo_data import make_demo_corpus

    path = make_demo_corpus(tmp_path / "d", utterances=6, engines=("espeak",))
    mtime = path.stat().st_mtime_ns
    assert make_demo_corpus(tmp_path / "d", utterances=6, engines=("espeak",)) == path
    assert path.stat().st_mtime_ns == mtime
    with pytest.raises(ConfigError, match="different corpus"):
        make_demo_corpus(tmp_path / "d", utterances=7, engines=("espeak",))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        make_demo_corpus(tmp_path / "x", utterances=6)


def test_bad_size_is_one_error_line_without_a_progress_bar(tmp_path):
    done = _cli("demo-data", str(tmp_path / "d"), "-n", "2")
    assert done.returncode == 1
    assert done.stderr == "error: --utterances must be at least 6 (one per voice), got 2\n"
