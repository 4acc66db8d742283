"""A run is identified by what it computes (labels, splits, upstreams, options), not by paths."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from featcache.errors import ConfigError
from featcache.pipelines.train import train
from featcache.testing.planted import write_planted_cache
from featcache.train.config import TrainConfig


def _config(cache, out, **kw):
    values = dict(cache=str(cache), out=str(out), upstreams=["ssl-a"], interface="ws", epochs=2,
                  num_workers=0, device="cpu", label="speaker")  # fmt: skip
    return TrainConfig(**{**values, **kw})


def _train(config, overwrite=False):
    lines = []
    return train(config, log=lines.append, overwrite=overwrite), lines


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return write_planted_cache(tmp_path_factory.mktemp("planted") / "cache")


def _relabelled(cache, tmp_path):
    """The cache's manifest with the speaker labels rotated (same ids, audio and splits)."""
    rows = [json.loads(line) for line in (cache / "manifest.jsonl").read_text().splitlines()]
    for row in rows:
        row["speaker"] = {"spk0": "spk1", "spk1": "spk2", "spk2": "spk0"}[row["speaker"]]
    out = tmp_path / "relabelled.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_resume_with_changed_labels_is_refused_naming_the_field(planted, tmp_path):
    run = tmp_path / "run"
    _train(_config(planted, run))
    (run / "summary.json").unlink()  # as if killed after the last checkpoint
    relabelled = _relabelled(planted, tmp_path)
    with pytest.raises(ConfigError, match="labels or splits of the manifest"):
        _train(_config(planted, run, manifest=str(relabelled)))
    with pytest.raises(ConfigError, match=r"option\(s\) lr changed"):
        _train(_config(planted, run, lr=0.5))


def test_same_run_by_absolute_path_or_moved_folder_is_accepted(planted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(planted, tmp_path / "cache")
    first, _ = _train(_config("cache", "run"))
    again, lines = _train(_config(tmp_path / "cache", tmp_path / "run"))
    assert again == first and any("already complete" in line for line in lines)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(tmp_path / "cache", moved / "cache")
    shutil.move(tmp_path / "run", moved / "run")
    (moved / "run" / "summary.json").unlink()  # an unfinished run, resumed from its new place
    resumed, lines = _train(_config(moved / "cache", moved / "run"))
    assert resumed["metrics"] == first["metrics"]
    assert any("resuming" in line for line in lines)


def test_overwrite_deletes_only_a_run_folder(planted, tmp_path):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not a featcache training run folder"):
        _train(_config(planted, folder), overwrite=True)
    assert (folder / "chapter1.tex").read_text() == "precious"
    run = tmp_path / "run"
    _train(_config(planted, run))
    (run / "note.txt").write_text("x")
    _train(_config(planted, run, lr=0.01), overwrite=True)
    assert not (run / "note.txt").exists()


def test_macro_f1_is_the_same_whatever_the_string_hashing():
    code = (
        "import random; from featcache.heads.metrics import macro_f1; r = random.Random(0); "
        "refs = [f'c{r.randrange(13)}' for _ in range(200)]; "
        "preds = [x if r.random() < 0.6 else f'c{r.randrange(13)}' for x in refs]; "
        "print(repr(macro_f1(refs, preds)))"
    )
    values = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
        ).stdout  # fmt: skip
        for seed in range(8)
    }
    assert len(values) == 1, values
