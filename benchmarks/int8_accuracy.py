"""What int8 costs a user: the demo recipe run twice, float16 and int8 caches, same seeds.

Run: ``.venv/bin/python benchmarks/int8_accuracy.py --out int8-acc [-u UPSTREAM ...]``

Writes two copies of ``pipelines/recipes/demo.toml`` that differ only in ``[extract] dtype``,
runs each with ``featcache run`` (synthesized corpus, extraction, the five fusion runs on the
speaker label, pooled probes per layer), then prints test accuracy of every run and the probe
accuracy of every (upstream, layer) side by side. ``-u`` replaces the upstreams, e.g.
``-u /work/shared/models/whisper-tiny.en -u fbank``. Stages already done are skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "pipelines" / "recipes" / "demo.toml"
DTYPES = ("float16", "int8")


def run(dtype: str, out: Path, upstreams: list[str]) -> Path:
    text = RECIPE.read_text()
    recipe, n = re.subn(r"^\[extract\]$", f'[extract]\ndtype = "{dtype}"', text, flags=re.M)
    assert n == 1, "demo.toml has no [extract] table"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"demo-{dtype}.toml").write_text(recipe)
    cmd = [sys.executable, "-m", "featcache.cli.main", "run", str(out / f"demo-{dtype}.toml"),
           "--out", str(out / dtype)]  # fmt: skip
    for u in upstreams:
        cmd += ["-u", u]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(out / f"{dtype}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    return out / dtype


def probe_scores(folder: Path) -> dict[tuple[str, int], float]:
    """(upstream, layer) -> mean cross-validated accuracy, from the probe's CSV."""
    import csv

    with open(folder / "analysis" / "probe" / "probe.csv") as f:
        rows = list(csv.DictReader(f))
    return {(r["upstream"], int(r["layer"])): float(r["mean"]) for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("int8-accuracy"))
    ap.add_argument("-u", "--upstream", action="append", default=[])
    args = ap.parse_args()
    folders = {dt: run(dt, args.out, args.upstream) for dt in DTYPES}
    results = {dt: json.loads((f / "results.json").read_text()) for dt, f in folders.items()}
    print("fusion runs, speaker ID on the demo corpus (same seeds): test accuracy")
    print(f"{'run':14s} {'upstreams':44s} {'interface':9s} {'float16':>8s} {'int8':>8s}")
    for a, b in zip(results["float16"], results["int8"], strict=True):
        print(f"{a['run']:14s} {a['upstreams']:44s} {a['interface']:9s} "
              f"{a['test']['accuracy']:8.4f} {b['test']['accuracy']:8.4f}")  # fmt: skip
    probes = {dt: probe_scores(f) for dt, f in folders.items()}
    print("\npooled probe accuracy per layer (5-fold CV mean)")
    print(f"{'upstream':30s} {'layer':>5s} {'float16':>8s} {'int8':>8s}")
    for key in sorted(probes["float16"]):
        print(f"{key[0]:30s} {key[1]:5d} {probes['float16'][key]:8.4f} {probes['int8'][key]:8.4f}")
    sizes = {dt: _bytes(f / "cache") for dt, f in folders.items()}
    print(f"\ncache on disk: float16 {sizes['float16'] / 2**20:.1f} MB, int8 "
          f"{sizes['int8'] / 2**20:.1f} MB ({sizes['int8'] / sizes['float16']:.3f}x)")  # fmt: skip


def _bytes(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


if __name__ == "__main__":
    main()
