"""The demo's five trainings, this code against another featcache tree, same cache and seeds.

    .venv/bin/python benchmarks/train_demo.py --cache CACHE --old OLD_TREE [--out DIR]
        [--repeats 1]

``CACHE`` is a demo cache (``random:tiny-hubert``, ``random:tiny-wavlm``, ``fbank`` over the
240-utterance demo corpus, made by ``featcache demo-data`` + ``extract``, which both trees must
read). ``OLD_TREE`` is a folder on ``PYTHONPATH`` that imports as the other featcache (for the
code before issue 11: a worktree of commit 2d6ca40 with ``featcache/cli`` and
``featcache/pipelines`` linked to its ``cli/`` and ``pipelines/``). Each training is the demo
recipe's (``pipelines/recipes/demo.toml``: classify on speaker, 15 epochs, patience 5, 2000
batch frames, lr 3e-3, no workers, seed 0, one torch thread), run in a fresh process by the old
tree, then by this one, one after the other: single ``ws`` and ``hconv`` on the first upstream
(the runs the demo had then) and multi-model ``ws``, ``hconv``, ``chconv`` on all three. It
prints each run's dev and test accuracy from both trees and the seconds of ``train()``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

UPSTREAMS = ["random-tiny-hubert", "random-tiny-wavlm", "fbank"]
RUNS = [("single-ws", UPSTREAMS[:1], "ws"), ("single-hconv", UPSTREAMS[:1], "hconv"),
        ("multi-ws", UPSTREAMS, "ws"), ("multi-hconv", UPSTREAMS, "hconv"),
        ("multi-chconv", UPSTREAMS, "chconv")]  # fmt: skip
OPTIONS = dict(task="classify", label="speaker", epochs=15, patience=5, batch_frames=2000,
               lr=3e-3, num_workers=0, seed=0, device="cpu")  # fmt: skip

CHILD = """
import json, sys, time
import torch
torch.set_num_threads(1)
from featcache.pipelines.train import train
from featcache.train.config import TrainConfig
values = json.loads(sys.argv[1])
started = time.perf_counter()
summary = train(TrainConfig(**values), log=lambda line: None)
seconds = time.perf_counter() - started
import featcache
print(json.dumps({"tree": featcache.__file__, "seconds": seconds, "metrics": summary["metrics"], "epochs": summary["epochs"],
                  "loader": summary.get("loader", "utterances"),
                  "data_path": summary.get("data_path", {}).get("source", "frames")}))
"""


def run_one(tree: str | None, values: dict) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if tree:
        env["PYTHONPATH"] = tree
    # -P: the working directory (a checkout) must not shadow the tree on PYTHONPATH
    done = subprocess.run([sys.executable, "-P", "-c", CHILD, json.dumps(values)], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"training failed ({tree or 'this tree'}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, type=Path)
    parser.add_argument("--old", required=True, help="PYTHONPATH folder of the other tree")
    parser.add_argument("--out", type=Path, help="keep the run folders here")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    results: dict[tuple[str, str], list[dict]] = {}
    for r in range(args.repeats):
        for name, ups, interface in RUNS:
            for tree, label in ((args.old, "old"), (None, "new")):
                folder = out / f"{label}-{name}-{r}"
                values = dict(OPTIONS, cache=str(args.cache.resolve()), out=str(folder),
                              upstreams=ups, interface=interface)  # fmt: skip
                result = run_one(tree, values)
                results.setdefault((name, label), []).append(result)
                print(f"{label} {name}: {result['seconds']:.1f} s ({result['tree']})", flush=True)
    print(f"\n{'run':14s} {'old dev/test':>15s} {'new dev/test':>15s} {'old s':>8s} "
          f"{'new s':>8s} {'new/old':>8s}  new data, loader; epochs old/new")  # fmt: skip
    totals = {"old": 0.0, "new": 0.0}
    for name, _, _ in RUNS:
        row = {}
        for label in ("old", "new"):
            runs = results[(name, label)]
            fastest = min(runs, key=lambda x: x["seconds"])
            totals[label] += fastest["seconds"]
            m = fastest["metrics"]
            row[label] = (fastest, f"{m['dev']['accuracy']:.4f}/{m['test']['accuracy']:.4f}")
        old, new = row["old"][0], row["new"][0]
        same = all(run["metrics"] == results[(name, "old")][0]["metrics"]
                   for run in results[(name, "new")])  # fmt: skip
        print(f"{name:14s} {row['old'][1]:>15s} {row['new'][1]:>15s} {old['seconds']:8.1f} "
              f"{new['seconds']:8.1f} {new['seconds'] / old['seconds']:7.2f}x  "
              f"{new['data_path']}, {new['loader']}; {old['epochs']}/{new['epochs']}"
              f"{'' if same else '  (metrics differ)'}")  # fmt: skip
    print(f"{'all five':14s} {'':>15s} {'':>15s} {totals['old']:8.1f} {totals['new']:8.1f} "
          f"{totals['new'] / totals['old']:7.2f}x  (fastest of {args.repeats} each)")  # fmt: skip


if __name__ == "__main__":
    main()
