"""Checkpoints hold tensors and plain values; a crafted pickle in a run folder never runs."""

from __future__ import annotations

import pickle

import pytest
import torch

from featcache.cli.main import main
from featcache.testing.planted import write_planted_cache
from featcache.train import checkpoint


class _Payload:
    """Unpickling this writes a marker file: what an attacker's best.pt would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # a real exploit would call os.system instead


def _cli(capsys, *argv):
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in argv])
    return done.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def hconv_run(tmp_path_factory):
    from featcache.pipelines.train import train
    from featcache.train.config import TrainConfig

    root = tmp_path_factory.mktemp("safe")
    cache = write_planted_cache(root / "cache")
    run = root / "run"
    train(TrainConfig(cache=str(cache), out=str(run), upstreams=["ssl-a"], interface="hconv",
                      epochs=1, num_workers=0, device="cpu"), log=lambda line: None)  # fmt: skip
    return cache, run


def test_checkpoints_load_with_weights_only(hconv_run):
    _, run = hconv_run
    for name in ("best.pt", "last.pt"):
        saved = torch.load(run / name, map_location="cpu", weights_only=True)
        assert saved["model"] and saved["task"]["classes"] == ["spk0", "spk1", "spk2"]


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    import random

    import numpy as np

    checkpoint.seed_everything(3)
    checkpoint.save_atomic({"rng": checkpoint.rng_state()}, tmp_path / "x.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    checkpoint.seed_everything(99)
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "x.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_malicious_best_pt_is_refused_in_one_line(hconv_run, tmp_path, capsys, command):
    cache, good = hconv_run
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "summary.json", "metrics.jsonl"):
        (run / name).write_bytes((good / name).read_bytes())
    marker = tmp_path / "pwned"
    with open(run / "best.pt", "wb") as f:
        pickle.dump({"model": _Payload(marker)}, f)
    if command == "evaluate":
        code, err = _cli(capsys, "evaluate", run)
    else:
        code, err = _cli(capsys, "report", "--cache", cache, "--runs", run,
                         "--out", tmp_path / "r.html")  # fmt: skip
    assert not marker.exists()
    assert code == 1
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "best.pt: refused to load" in err


def test_damaged_checkpoint_is_a_one_line_error(hconv_run, tmp_path, capsys):
    _, good = hconv_run
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_bytes((good / "config.json").read_bytes())
    (run / "best.pt").write_bytes((good / "best.pt").read_bytes()[:100])
    code, err = _cli(capsys, "evaluate", run)
    assert code == 1 and "best.pt: damaged or not a checkpoint" in err


def test_malicious_checkpoint_refusal_is_one_line_in_a_real_process(hconv_run, tmp_path):
    """Outside pytest torch warns about the foreign pickle protocol first: still one line."""
    import subprocess
    import sys

    _, good = hconv_run
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_bytes((good / "config.json").read_bytes())
    marker = tmp_path / "pwned"
    with open(run / "best.pt", "wb") as f:
        pickle.dump({"model": _Payload(marker)}, f, protocol=4)
    done = subprocess.run([sys.executable, "-m", "featcache.cli.main", "evaluate", str(run)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1 and not marker.exists()
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "refused to load" in done.stderr
