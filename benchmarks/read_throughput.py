"""Reading frames: loader MB/s vs a raw sequential read of the same bytes, and three Zarr v3 engines.

    .venv/bin/python benchmarks/read_throughput.py [--utterances 200] [--layers 5] [--dim 384]
        [--repeats 3] [--work DIR]

One float16 Zarr store (lz4, crc32c, chunks (1024, 1, D), as ``extract`` writes it) of random
frames in utterances of 100-400 frames, tiny.en's shape by default (5 x 384), 90% in the train
split.

1. Engines, each reading every part's ``frames`` whole: zarr-python's default codec pipeline,
   featcache's direct chunk reads (``featcache.store.zarr_direct``, what ``CacheReader`` uses
   for local Zarr stores), the ``zarrs`` codec pipeline (PyPI ``zarrs``, Rust, enabled through
   ``zarr.config``) and ``tensorstore``'s ``zarr3`` driver, against ``np.load`` of the same frames in one ``.npy``
   (page cache warm).
2. Loaders delivering every training utterance's frames in batches: the block loader
   (0 and 2 workers) and the per-utterance loader (0 and 2 workers), in MB/s of frames delivered
   (valid frames as stored, padding not counted), against the **raw** read: every chunk file of
   the store read whole, in storage order, one after the other (the bytes on disk, compressed
   and checksummed, not decoded: the physical limit). Both are timed **cold** (each file's
   pages dropped from the page cache first with ``posix_fadvise(DONTNEED)``, which needs no
   root: the disk's speed) and **warm** (just read: memory speed, where decoding, checksums
   and copies are all that is left). The decode floor (read + crc32c + blosc decode of every
   chunk, one thread, no assembly) shows what any reader of this store must spend warm.

Runs alternate, fastest of ``--repeats`` counts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def build(work: Path, utterances: int, layers: int, dim: int):
    from featcache.manifest import Manifest
    from featcache.testing.caches import write_cache

    if (work / "raw.npy").exists():  # a --work folder from an earlier run
        return next((work / "cache").glob("*.zarr")), work / "raw.npy"

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

    def with_featcache_direct():
        from featcache.store.zarr_direct import direct_frames

        for p in parts:
            frames = direct_frames(p / "frames")
            frames.read(0, frames.shape[0])

    runs = {"raw np.load": lambda: np.load(raw), "zarr-python": with_zarr,
            "featcache direct": with_featcache_direct,
            "zarrs pipeline": with_zarrs, "tensorstore": with_tensorstore}  # fmt: skip
    seconds = {k: float("inf") for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            seconds[name] = min(seconds[name], fastest(fn, 1))
    return seconds


def chunk_files(path: Path) -> list[Path]:
    """Every chunk file of the store's frames, in storage order (part, frame chunk, layer)."""
    found = []
    for part in sorted((p for p in (path / "parts").iterdir() if p.name.isdigit()),
                       key=lambda p: int(p.name)):  # fmt: skip
        files = (part / "frames" / "c").rglob("*")
        found += sorted((f for f in files if f.is_file()),
                        key=lambda f: [int(x) for x in f.relative_to(part).parts[2:]])  # fmt: skip
    return found


def evict(files: list[Path]) -> None:
    """Drop the files' pages from the page cache (a cold read follows). Dirty pages cannot be
    dropped, so a store just written is flushed first (without it the first cold runs of a
    fresh store read memory)."""
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_raw(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as h:
            h.read()


def decode_floor(files: list[Path]) -> None:
    """Read, verify and decode every chunk: what any reader of the store must do."""
    import google_crc32c
    from numcodecs import Blosc

    codec = Blosc()
    for f in files:
        data = f.read_bytes()
        body, stored = data[:-4], int.from_bytes(data[-4:], "little")
        assert google_crc32c.value(body) == stored
        codec.decode(body)


def loaders(path: Path, repeats: int) -> tuple[dict[tuple[str, str], float], int, int]:
    from featcache.pipelines.train import prepare
    from featcache.train.blocks import BlockLoader
    from featcache.train.config import TrainConfig
    from featcache.train.loaders import UtteranceLoader

    cfg = TrainConfig(cache=str(path.parent), upstreams=["synthetic"], label="label",
                      normalize="none", pooled="off")  # fmt: skip
    train = prepare(cfg, lambda s: None)["datasets"]["train"]
    delivered = int(sum(train.lengths)) * train.frame_bytes()
    files = chunk_files(path)
    stored = sum(f.stat().st_size for f in files)

    def target(targets):
        return {}

    made = {
        "blocks, 0 workers": BlockLoader(train, 8000, target, 0, True, 0),
        "blocks, 2 workers": BlockLoader(train, 8000, target, 2, True, 0),
        "per utterance, 0 workers": UtteranceLoader(train, 8000, target, 0, True, 0),
        "per utterance, 2 workers": UtteranceLoader(train, 8000, target, 2, True, 0),
    }
    runs = {"raw read": lambda: read_raw(files), "decode floor": lambda: decode_floor(files),
            **{k: (lambda ld=ld: sum(1 for _ in ld)) for k, ld in made.items()}}  # fmt: skip
    seconds = {(name, mode): float("inf") for name in runs for mode in ("cold", "warm")}
    for _ in range(repeats):
        for mode in ("cold", "warm"):
            for name, fn in runs.items():
                if mode == "cold":
                    evict(files)
                elif name != "decode floor":
                    read_raw(files)  # warm for sure
                seconds[(name, mode)] = min(seconds[(name, mode)], fastest(fn, 1))
    return seconds, delivered, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, help="keep (or reuse) the store here")
    parser.add_argument("--no-engines", action="store_true", help="only the loaders")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        path, raw = build(work, args.utterances, args.layers, args.dim)
        size = raw.stat().st_size
        print(f"store: {args.utterances} utterances x ({args.layers}, {args.dim}) float16, "
              f"{size / 1e6:.0f} MB of frames; fastest of {args.repeats}")  # fmt: skip
        read = {} if args.no_engines else engines(path, raw, args.repeats)
        for name, s in read.items():
            print(f"  {name:16s} {size / s / 1e6:8.0f} MB/s  {read['raw np.load'] / s:5.2f}x raw")
        seconds, delivered, stored = loaders(path, args.repeats)
        print(f"loaders, {delivered / 1e6:.0f} MB of training frames delivered per epoch; "
              f"raw: {stored / 1e6:.0f} MB of chunk files read whole in storage order")  # fmt: skip
        for mode in ("cold", "warm"):
            raw_rate = stored / seconds[("raw read", mode)]
            print(f"  page cache {mode}:")
            for (name, m), s in seconds.items():
                if m != mode:
                    continue
                rate = (stored if name in ("raw read", "decode floor") else delivered) / s
                target = "" if name in ("raw read", "decode floor") else " (target >= 0.7x)"
                print(f"    {name:26s} {rate / 1e6:8.0f} MB/s  {rate / raw_rate:5.2f}x raw{target}")


if __name__ == "__main__":
    main()
