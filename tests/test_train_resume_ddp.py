"""Training survives SIGKILL (a rerun resumes to the same result) and runs as 2-process DDP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from featcache.pipelines.train import prepare, train
from featcache.train.config import TrainConfig
from featcache.train.data import FrameBatchSampler

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    from featcache.audio import load_utterance
    from featcache.testing.caches import write_cache
    from featcache.testing.corpus import make_speech_corpus
    from featcache.upstreams import load_upstream

    root = tmp_path_factory.mktemp("resume")
    manifest = make_speech_corpus(root / "corpus", utterances=36)
    upstream = load_upstream("fbank")
    hidden = upstream.forward([load_utterance(u) for u in manifest])
    arrays = {u.id: h.transpose(1, 0, 2) for u, h in zip(manifest, hidden, strict=True)}
    write_cache(root / "cache", "fbank", arrays, manifest, upstream.frame_rate)
    return root / "cache"


ARGS = ["-u", "fbank", "--label", "speaker", "--interface", "gumd", "--epochs", "8",
        "--patience", "8", "--batch-frames", "1500", "--save-every", "2", "--num-workers", "0",
        "--grad-accum", "2", "--device", "cpu", "--seed", "7"]  # fmt: skip


def _config(cache_dir, out, **loader):
    values = dict(cache=str(cache_dir), out=str(out), upstreams=["fbank"], label="speaker",
                  interface="gumd", epochs=8, patience=8, batch_frames=1500, save_every=2,
                  num_workers=0, grad_accum=2, device="cpu", seed=7)  # fmt: skip
    return TrainConfig(**{**values, **loader})


# the block loader streaming from disk through a worker, held in memory, per utterance, and the
# default (auto: this small cache reads per utterance, the resumed run keeps the recorded choice)
LOADERS = [{"loader": "blocks", "cache_in_memory": "off", "num_workers": 1},
           {"loader": "blocks", "cache_in_memory": "auto"},
           {"loader": "utterances", "cache_in_memory": "off"},
           {"loader": "auto", "cache_in_memory": "auto"}]  # fmt: skip


def _flags(loader):
    return [f for k, v in loader.items() for f in (f"--{k.replace('_', '-')}", str(v))]


def _history(run):
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "seconds"} for line in lines]


@pytest.mark.parametrize(
    "loader", LOADERS, ids=["blocks-stream", "blocks-held", "utterances", "auto"]
)
def test_sigkill_then_rerun_gives_the_same_result(cache, tmp_path, loader):
    # gumd draws Gumbel noise every step, so the RNG state must survive the kill too
    reference = train(_config(cache, tmp_path / "straight", **loader), log=lambda s: None)
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "featcache.cli.main", "train", "--cache", str(cache),
           "--out", str(killed), *ARGS, *_flags(loader)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    metrics = killed / "metrics.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "summary.json").exists()
    state = torch.load(killed / "last.pt", weights_only=False)["state"]
    assert 1 <= state["epoch"] < 8
    lines = []
    resumed = train(_config(cache, killed, **loader), log=lines.append)
    assert any(line.startswith("resuming ") for line in lines)
    assert resumed["metrics"] == reference["metrics"]
    assert (resumed["loader"], resumed["loader_reason"]) == (reference["loader"],
                                                             reference["loader_reason"])  # fmt: skip
    assert resumed["best"] == reference["best"] and resumed["steps"] == reference["steps"]
    assert _history(killed) == _history(tmp_path / "straight")
    a = torch.load(killed / "best.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "straight" / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_on_gloo(cache, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
           "-m", "featcache.cli.main", "train", "--cache", str(cache), "--out", str(out),
           "-u", "fbank", "--interface", "hconv", "--epochs", "2", "--batch-frames", "1500",
           "--num-workers", "0", "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("results: interface=hconv") == 1  # only rank 0 prints
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    config = TrainConfig(cache=str(cache), out="", upstreams=["fbank"], batch_frames=1500)
    parts = prepare(config, log=lambda s: None)
    lengths = parts["datasets"]["train"].lengths
    # the input statistics (train split, same on every rank) are the single-process ones
    saved = torch.load(out / "best.pt", weights_only=False)["model"]
    for name, value in parts["model"].normalize.state_dict().items():
        assert torch.equal(saved[f"normalize.{name}"], value)
    assert summary["normalization"] == parts["normalization"]
    # each rank takes half of every epoch's batches (padded to an even count)
    batches = [len(FrameBatchSampler(lengths, 1500, shuffle=True, epoch=e)) for e in (0, 1)]
    assert summary["steps"] == sum((n + 1) // 2 for n in batches)
    assert set(summary["metrics"]["test"]) == {"accuracy", "macro_f1"}
