"""``featcache run`` killed between every pair of stage outputs still finishes, with the same results.

A small recipe (CSV import, fbank + a tiny random HuBERT, one training run, probe, similarity,
selection, report) runs in real subprocesses. A hook in the subprocess (installed by a driver
script, not by featcache) watches the files the run starts to write under its output folder:
every stage output, plus the creation of each store and the writing of its index (the parts
inside have their own resume tests). The hook SIGKILLs the
process as it starts an output it has never been killed before (an output is its file name and
which time this process writes it), so each run in the chain gets one step further, and the chain
stops once before every output of the recipe. The last run must exit 0 and leave the same results
as one uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from featcache.store import open_cache
from featcache.testing.corpus import make_tone_corpus

pytestmark = pytest.mark.slow

DRIVER = '''
import builtins, io, os, re, signal, sys
from collections import Counter
from pathlib import Path

out, log, kill = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), sys.argv[3] == "kill"
killed_at = set(log.read_text().splitlines()) if log.exists() else set()
real_open, count = io.open, Counter()


def output_name(file):
    """The output a write starts (temporary names mapped to their target), or None."""
    try:
        rel = Path(os.fsdecode(file)).resolve().relative_to(out)
    except (TypeError, ValueError):
        return None
    if rel.name.startswith((".featcache.lease", ".featcache.lock")):
        return None  # the cache lock's lease, renewed on a timer: not a stage output
    if any(p.endswith((".zarr", ".zarr.work")) for p in rel.parts[:-1]):
        return None  # chunks, part metadata and the plan of a store: see hook_store
    name = re.sub(r"^\\.(.+)\\.\\d+-[0-9a-f]{8}\\.tmp$", r"\\1", rel.name)
    return str(rel.parent / name)


def starting(name):
    """An output is about to be written: die here unless a run was killed here before."""
    count[name] += 1
    key = f"{name}#{count[name]}"
    if kill and key not in killed_at:
        with real_open(log, "a") as f:
            f.write(key + "\\n")
        os.kill(os.getpid(), signal.SIGKILL)


def hooked_open(file, mode="r", *args, **kwargs):
    name = output_name(file) if any(c in mode for c in "wax") else None
    if name is not None:
        starting(name)
    return real_open(file, mode, *args, **kwargs)


def hook_store(method):
    """Zarr writes through its own I/O: mark a store's creation and its index as outputs."""
    from featcache.store.zarr import ZarrBackend

    original = getattr(ZarrBackend, method)

    def wrapped(self, path, *args, **kwargs):
        starting(f"{Path(path).resolve().relative_to(out)}:{method}")
        return original(self, path, *args, **kwargs)

    setattr(ZarrBackend, method, wrapped)


builtins.open = io.open = hooked_open
hook_store("create")
hook_store("finalize")
from featcache.cli.main import main

main(["run", sys.argv[4], "--out", str(out)])
'''

RECIPE = """
name = "kill"
threads = 1
[data]
importer = "csv"
source = "corpus.csv"
[extract]
upstreams = ["fbank", "random:tiny-hubert"]
[train]
task = "classify"
label = "label"
epochs = 2
patience = 2
num_workers = 0
batch_frames = 400
[[train.runs]]
name = "ws"
upstreams = "all"
interface = "ws"
[analyse]
label = "label"
max_models = 2
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    manifest = make_tone_corpus(root / "corpus", utterances=15, seconds=(0.3, 0.6))
    with open(root / "corpus.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "audio", "label", "split"])
        for u in manifest:
            w.writerow([u.id, u.audio, u.get("label"), u.split])
    (root / "kill.toml").write_text(textwrap.dedent(RECIPE))
    (root / "driver.py").write_text(DRIVER)
    return root


def _run(recipe: Path, out: Path, kill: bool):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, str(recipe / "driver.py"), str(out), str(out.parent / "killed.log"),
            "kill" if kill else "run", str(recipe / "kill.toml")]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


def _results(out: Path) -> dict:
    found = {"results": json.loads((out / "results.json").read_text())}
    for name in ("probe/probe.json", "similarity/similarity.json", "select/selection.json"):
        found[name] = json.loads((out / "analysis" / name).read_text())
    with np.load(out / "analysis" / "similarity" / "similarity.npz") as z:
        found["cka"] = {k: z[k].tolist() for k in z.files}
    summary = json.loads((out / "runs" / "ws" / "summary.json").read_text())
    found["summary"] = {k: v for k, v in summary.items() if k != "seconds"}
    found["summary"].get("memory", {}).pop("budget_gb", None)  # free memory at that moment
    return found


def test_a_run_killed_between_every_pair_of_outputs_finishes_the_same(recipe, tmp_path):
    reference = tmp_path / "reference"
    once = _run(recipe, reference, kill=False)
    assert once.returncode == 0, once.stdout + once.stderr

    out = tmp_path / "killed"
    runs = 0
    while runs < 200:
        runs += 1
        done = _run(recipe, out, kill=True)
        if done.returncode == 0:
            break
        assert done.returncode == -9, done.stdout + done.stderr  # killed by the hook, nothing else
    killed_at = (tmp_path / "killed.log").read_text().splitlines()
    assert len(killed_at) == runs - 1  # one kill per run but the last: every run made progress
    for where in ("manifest.jsonl#1", "cache/manifest.jsonl#1", "cache/fbank.zarr:create#1",
                  "cache/fbank.zarr:finalize#1", "cache/random-tiny-hubert.zarr:create#1",
                  "cache/random-tiny-hubert.zarr:finalize#1", "runs/ws/config.json#1",
                  "runs/ws/best.pt#1", "runs/ws/last.pt#1", "runs/ws/summary.json#1",
                  "analysis/probe/probe.json#1", "analysis/similarity/similarity.npz#1",
                  "analysis/similarity/similarity.json#1", "analysis/select/selection.json#1",
                  "report.html#1", "results.json#1"):  # fmt: skip
        assert where in killed_at, (where, killed_at)

    assert _results(out) == _results(reference)
    for name in ("fbank", "random:tiny-hubert"):
        a, b = open_cache(out / "cache", name), open_cache(reference / "cache", name)
        assert a.utterances == b.utterances
        for u in a.utterances:
            np.testing.assert_array_equal(a.get(u, dtype=None), b.get(u, dtype=None))
    assert (out / "report.html").read_text().count("<img") == (
        (reference / "report.html").read_text().count("<img")
    )
