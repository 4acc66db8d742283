"""Frame-level CKA: time and peak memory as the number of frames grows.

    .venv/bin/python benchmarks/cka_memory.py [--frames 10000 100000] [--upstreams 3]
        [--layers 13] [--dims 768] [--source store|generated] [--threads 0]

Every upstream pair (self pairs included, as ``featcache similarity`` computes them) of
``--upstreams`` random upstreams with ``--layers`` x ``--dims`` features is compared at the frame
level over ``--frames`` frames. Each size runs in a fresh subprocess, so its peak resident memory
(``ru_maxrss``) is its own. ``--source store`` (default) writes the frames to real float16 Zarr
stores with ``featcache.testing.caches.write_cache`` (in a separate writer process) and runs
``featcache.pipelines.similarity.run_similarity``; ``--source generated`` feeds
:func:`featcache.analysis.cka.cka_layers` with chunks generated on the fly (no disk).

Prints, per size, seconds and peak memory (and the peak minus the memory after imports), then
the ratios largest/smallest: frames grow 10x, time should grow ~10x, memory should stay flat. For
contrast it prints what a Gram-matrix CKA would need (one N x N float64 matrix per layer pair).

The work is ~2 (U L D)^2 N multiply-adds for U upstreams: at 3 x 13 x 768 and 100k frames that is
~2e14 flops, hours on a laptop CPU; pass a smaller ``--dims`` there.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UTTERANCE_FRAMES = 1000


def child(args) -> None:
    """Compute all pairs once; print a JSON line with seconds and memory."""
    import numpy as np

    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    from featcache.analysis import cka  # noqa: F401  (imports counted in the baseline)
    from featcache.pipelines import analyse  # noqa: F401

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if args.source == "store":
        result = analyse.run_similarity(args.cache, level="frames", max_frames=None)
        rows = max(result["rows"].values())
        sample = result["matrices"][("u0", "u1")]
    else:
        rows, sample = generated_pairs(args, np)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"frames": args.frames, "rows": rows, "seconds": seconds,
                      "peak_mb": peak_kb / 1024, "base_mb": base_kb / 1024,
                      "cka_u0_u1_diag_mean": float(np.mean(np.diag(sample)))}))  # fmt: skip


def frames_of(u: int, k: int, frames: int, layers: int, dims: int, np):
    """Utterance k of upstream u: a shared component (so CKA is not ~0) plus per-model noise."""
    shared = np.random.default_rng([k]).standard_normal((frames, 1, dims), dtype=np.float32)
    noise = np.random.default_rng([u + 1, k]).standard_normal(
        (frames, layers, dims), dtype=np.float32
    )
    mix = np.linspace(0.2, 1.0, layers, dtype=np.float32)[None, :, None]  # (1, L, 1)
    return shared * mix + noise  # (T, L, D)


def generated_pairs(args, np):
    from featcache.analysis.cka import cka_layers

    count = -(-args.frames // UTTERANCE_FRAMES)
    sizes = [min(UTTERANCE_FRAMES, args.frames - k * UTTERANCE_FRAMES) for k in range(count)]
    sample = None
    for a in range(args.upstreams):
        for b in range(a, args.upstreams):

            def read(group, a=a, b=b):
                for k, t in enumerate(sizes):
                    y = frames_of(b, k, t, args.layers, args.dims, np)
                    x = y if a == b else frames_of(a, k, t, args.layers, args.dims, np)
                    yield x[:, group], y

            m = cka_layers(read, args.layers, args.layers, args.dims, args.dims)
            if (a, b) == (0, 1):
                sample = m
    return args.frames, sample


def write_stores(cache: Path, args) -> None:
    """Writer process: one float16 Zarr store per upstream, 1000-frame utterances."""
    import numpy as np

    from featcache.manifest import Manifest
    from featcache.testing.caches import write_cache

    count = -(-args.frames // UTTERANCE_FRAMES)
    sizes = [min(UTTERANCE_FRAMES, args.frames - k * UTTERANCE_FRAMES) for k in range(count)]
    records = [{"id": f"utt{k:05d}", "audio": f"/none/{k}.wav"} for k in range(count)]
    manifest = Manifest.from_records(records)
    for u in range(args.upstreams):
        arrays = {r["id"]: frames_of(u, k, t, args.layers, args.dims, np)
                  for k, (r, t) in enumerate(zip(records, sizes, strict=True))}  # fmt: skip
        write_cache(cache, f"u{u}", arrays, manifest, dtype="float16", part_size=16)
        del arrays


def run_size(frames: int, args, work: Path) -> dict:
    common = ["--upstreams", args.upstreams, "--layers", args.layers, "--dims", args.dims,
              "--frames", frames, "--source", args.source, "--threads", args.threads]  # fmt: skip
    cache = work / f"cache-{frames}"
    if args.source == "store":
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--write", "--cache", cache, *map(str, common)],
                       check=True)  # fmt: skip
        print(
            f"  wrote {frames} frames x {args.upstreams} stores in {time.perf_counter() - started:.1f}s"
        )
    out = subprocess.run([sys.executable, __file__, "--child", "--cache", cache, *map(str, common)],
                         check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--upstreams", type=int, default=3)
    p.add_argument("--layers", type=int, default=13)
    p.add_argument("--dims", type=int, default=768)
    p.add_argument("--source", choices=["store", "generated"], default="store")
    p.add_argument("--threads", type=int, default=0, help="BLAS threads (0: library default)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child or args.write:
        args.frames = args.frames[0]  # one size per subprocess
    if args.child:
        return child(args)
    if args.write:
        return write_stores(args.cache, args)
    pairs = args.upstreams * (args.upstreams + 1) // 2
    print(f"frame-level CKA, {args.upstreams} upstreams x {args.layers} layers x {args.dims} dims, "
          f"{pairs} pairs (self pairs included), source={args.source}")  # fmt: skip
    from featcache.analysis.cka import CKAAccumulator, x_layer_groups

    groups = x_layer_groups(args.layers, args.layers, args.dims, args.dims)
    stats = CKAAccumulator.nbytes(len(groups[0]), args.layers, args.dims, args.dims)
    print(f"  CKA statistics per pair: {stats / 2**20:.1f} MiB, whatever the frames "
          f"({len(groups)} pass(es) over the frames per pair)")  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="cka-bench-") as tmp:
        for frames in args.frames:
            r = run_size(frames, args, Path(tmp))
            results.append(r)
            gram_gb = r["rows"] ** 2 * 8 / 1e9
            print(f"  {frames:>8} frames: {r['seconds']:8.1f} s  peak {r['peak_mb']:7.0f} MB "
                  f"(+{r['peak_mb'] - r['base_mb']:.0f} MB over imports)  "
                  f"[a Gram-matrix CKA would hold {gram_gb:.1f} GB per N x N matrix]")  # fmt: skip
            shutil.rmtree(Path(tmp, f"cache-{frames}"), ignore_errors=True)
    small, large = results[0], results[-1]
    print(f"ratio {large['frames']}/{small['frames']} frames: time x{large['seconds'] / small['seconds']:.2f}, "
          f"peak memory x{large['peak_mb'] / small['peak_mb']:.3f} "
          f"(over imports x{(large['peak_mb'] - large['base_mb']) / max(small['peak_mb'] - small['base_mb'], 1):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
