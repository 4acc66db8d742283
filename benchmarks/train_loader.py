"""Training step time with featcache's loader vs the same batches already in memory.

    .venv/bin/python benchmarks/train_loader.py [--utterances 56] [--workers 2] [--threads 2]
        [--work DIR]

Builds the same cache as ``train_cached_vs_online.py`` (two base-size random-init upstreams,
float16), then runs one epoch of multi-model ``hconv`` + ``classify`` training steps twice over
identical batches: once fed by the real loader (Zarr reads in DataLoader workers, resampling,
padding) and once from a list of the collated batches held in memory. The ratio says whether
the loader keeps up with training (target <= 1.2x). Runs alternate and the best of ``--repeats``
counts, because the machine may be shared. The wait for the first batch (workers starting and
reading it while nothing else runs) is printed apart: with few batches per epoch it dominates;
use ``--utterances`` for a longer epoch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from train_cached_vs_online import build_cache, cached_epoch, setup_training, train_step


def memory_epoch(parts, train, sampler, model, optimizer, batches) -> float:
    task = parts["task"]
    started = time.perf_counter()
    for batch in batches:
        train_step(model, optimizer, task, batch)
    return time.perf_counter() - started


def main() -> None:
    import torch

    from featcache.train.data import Collate, to_float32

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=56)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, help="reuse/keep the corpus and cache here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        if (work / "cache").exists():
            cache = work / "cache"
        else:
            cache, *_ = build_cache(work, args.utterances)
        setup = setup_training(cache)
        parts, train, sampler = setup[:3]
        collate = Collate(parts["task"].collate)
        batches = [to_float32(collate([train[i] for i in indices])) for indices in sampler]
        frames = sum(int(b["lengths"].sum()) for b in batches)
        print(
            f"{len(batches)} batches, {frames} frames, upstreams {[r.name for r in parts['readers']]}"
        )
        loader_times, memory_times, first_waits = [], [], []
        for _ in range(args.repeats):
            torch.manual_seed(0)
            setup = setup_training(cache)
            stats = {}
            loader_times.append(round(cached_epoch(*setup, workers=args.workers, stats=stats), 2))
            first_waits.append(round(stats["first_batch_s"], 2))
            torch.manual_seed(0)
            setup = setup_training(cache)
            memory_times.append(round(memory_epoch(*setup, batches), 2))
    best = loader_times.index(min(loader_times))
    loader, memory, first = loader_times[best], min(memory_times), first_waits[best]
    print(
        f"epoch with the loader ({args.workers} workers): {loader:8.2f} s  (runs: {loader_times})"
    )
    print(f"epoch from memory:                 {memory:8.2f} s  (runs: {memory_times})")
    print(f"ratio loader / memory:             {loader / memory:8.2f}x  (target <= 1.2x)")
    print(f"first batch wait (workers start):  {first:8.2f} s  (runs: {first_waits})")
    print(f"ratio without the first wait:      {(loader - first) / memory:8.2f}x")


if __name__ == "__main__":
    main()
