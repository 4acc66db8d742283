"""Reading frames: loader MB/s vs a raw sequential read, and three Zarr v3 reading engines.

    .venv/bin/python benchmarks/read_throughput.py [--utterances 200] [--layers 5] [--dim 384]
        [--repeats 3] [--work DIR]

One float16 Zarr store (lz4, chunks (1024, 1, D), as ``extract`` writes it) of random frames
in utterances of 100-400 frames, tiny.en's shape by default (5 x 384), all in the train split.

1. Engines, each reading every part's ``frames`` whole: zarr-python's default codec pipeline,
   the ``zarrs`` codec pipeline (PyPI ``zarrs``, Rust, enabled through ``zarr.config``) and
   ``tensorstore``'s ``zarr3`` driver, against ``np.load`` of the same frames in one ``.npy``.
2. Loaders delivering every training utterance's frames in batches: the block loader
   (0 and 2 workers) and the per-utterance loader (2 workers), in MB/s of frames delivered
   (valid frames as stored, padding not counted), against the same ``np.load``.

Every file is in the page cache (it was just written; dropping caches needs root), so "raw" is
the memory-speed limit of this machine. Runs alternate, fastest of ``--repeats`` counts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def build(work: Path, utterances: int, layers: int, dim: int):
    from featcache.manifest import Manifest
    from featcache.testing.caches import write_cache

    rng = np.random.default_rng(0)
    records = [{"id": f"u{i:04d}", "audio": "x.wav", "label": f"c{i % 4}",
                "split": "train" if i % 10 else "dev"} for i in range(utterances)]  # fmt: skip
    records[1]["split"] = "dev"
    manifest = Manifest.from_records(records, work / "manifest.jsonl")
    arrays = {r["id"]: rng.standard_normal((int(rng.integers(100, 400)), layers, dim),
                                           dtype=np.float32) for r in records}  # fmt: skip
    path = write_cache(work / "cache", "synthetic", arrays, manifest, 50.0, dtype="float16",
                       part_size=64)  # fmt: skip
    raw = work / "raw.npy"
    np.save(raw, np.concatenate([a.astype(np.float16) for a in arrays.values()]))
    return path, raw


def fastest(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def engines(path: Path, raw: Path, repeats: int) -> dict[str, float]:
    import tensorstore as ts
    import zarr

    parts = sorted(
        (p for p in (path / "parts").iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )

    def with_zarr():
        for p in parts:
            zarr.open_array(str(p / "frames"), mode="r")[...]

    def with_zarrs():
        with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}):
            with_zarr()

    def with_tensorstore():
        for p in parts:
            spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(p / "frames")}}
            ts.open(spec, read=True).result().read().result()

    runs = {"raw np.load": lambda: np.load(raw), "zarr-python": with_zarr,
            "zarrs pipeline": with_zarrs, "tensorstore": with_tensorstore}  # fmt: skip
    seconds = {k: float("inf") for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            seconds[name] = min(seconds[name], fastest(fn, 1))
    return seconds


def loaders(path: Path, raw: Path, repeats: int) -> tuple[dict[str, float], int]:
    from featcache.pipelines.train import prepare
    from featcache.train.blocks import BlockLoader
    from featcache.train.config import TrainConfig
    from featcache.train.loaders import UtteranceLoader

    cfg = TrainConfig(cache=str(path.parent), upstreams=["synthetic"], label="label",
                      normalize="none", pooled="off")  # fmt: skip
    train = prepare(cfg, lambda s: None)["datasets"]["train"]
    delivered = int(sum(train.lengths)) * train.frame_bytes()

    def target(targets):
        return {}

    made = {
        "blocks, 0 workers": BlockLoader(train, 8000, target, 0, True, 0),
        "blocks, 2 workers": BlockLoader(train, 8000, target, 2, True, 0),
        "per utterance, 2 workers": UtteranceLoader(train, 8000, target, 2, True, 0),
    }
    seconds = {"raw np.load": float("inf"), **{k: float("inf") for k in made}}
    for _ in range(repeats):
        seconds["raw np.load"] = min(seconds["raw np.load"], fastest(lambda: np.load(raw), 1))
        for name, loader in made.items():
            seconds[name] = min(seconds[name], fastest(lambda ld=loader: sum(1 for _ in ld), 1))
    return seconds, delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        path, raw = build(work, args.utterances, args.layers, args.dim)
        size = raw.stat().st_size
        print(f"store: {args.utterances} utterances x ({args.layers}, {args.dim}) float16, "
              f"{size / 1e6:.0f} MB of frames; fastest of {args.repeats}")  # fmt: skip
        read = engines(path, raw, args.repeats)
        for name, s in read.items():
            print(f"  {name:16s} {size / s / 1e6:8.0f} MB/s  {read['raw np.load'] / s:5.2f}x raw")
        seconds, delivered = loaders(path, raw, args.repeats)
        raw_rate = size / seconds["raw np.load"]
        print(f"loaders, {delivered / 1e6:.0f} MB of training frames delivered per epoch:")
        for name, s in seconds.items():
            rate = (size if name.startswith("raw") else delivered) / s
            print(f"  {name:26s} {rate / 1e6:8.0f} MB/s  {rate / raw_rate:5.2f}x raw "
                  f"(target >= 0.7x)")  # fmt: skip


if __name__ == "__main__":
    main()
