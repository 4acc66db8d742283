"""One epoch of fusion training from the layer cache vs with the upstreams run online (s3prl-style).

    .venv/bin/python benchmarks/train_cached_vs_online.py [--utterances 56] [--threads 2]
        [--interface hconv] [--work DIR]

Two base-size (768 x 12, 13 hidden states) random-initialised upstreams, ``random:hubert-base``
and ``random:wavlm-base``, on an espeak-ng demo corpus (56 utterances: ~3 minutes of audio, of
which the training split is ~2.4 minutes). ``--work DIR`` keeps (or reuses) the corpus and cache.
The cache is built once (float16, as ``extract`` writes it); then the same multi-model
``--interface`` (``hconv`` by default, or ``ws``) + ``classify`` training epoch runs twice over
the same batches (the block loader's plan):

- cached: featcache's training data path as ``featcache train`` chooses it (the pooled shortcut
  where exact, else the block loader; ``--memory auto`` holds the frames in memory first, as
  ``--cache-in-memory auto``; ``--memory off`` streams them with ``--workers`` workers);
- online: each batch's audio is loaded and both upstreams run forward under ``no_grad`` in the
  training loop, as s3prl's ``run_downstream.py`` does with frozen upstreams.

Prints both epoch times and their ratio (online / cached), measured in one run; the two epochs
alternate ``--repeats`` times and the best of each counts (the machine may be shared).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

UPSTREAMS = ("random:hubert-base", "random:wavlm-base")


def build_cache(work: Path, utterances: int, upstreams=UPSTREAMS):
    """Demo corpus + a float16 cache of every upstream; returns (cache dir, manifest, seconds)."""
    from featcache.audio import load_utterance
    from featcache.testing.caches import write_cache
    from featcache.testing.corpus import make_speech_corpus
    from featcache.upstreams import load_upstream

    manifest = make_speech_corpus(work / "corpus", utterances=utterances)
    wavs = [load_utterance(u) for u in manifest]
    started = time.perf_counter()
    for name in upstreams:
        up = load_upstream(name)
        arrays = {
            u.id: h.transpose(1, 0, 2) for u, h in zip(manifest, up.forward(wavs), strict=True)
        }
        write_cache(work / "cache", up.slug, arrays, manifest, up.frame_rate, dtype="float16")
        del arrays
    audio_s = sum(len(w) for w in wavs) / 16000
    return work / "cache", manifest, audio_s, time.perf_counter() - started


def setup_training(cache: Path, upstreams=UPSTREAMS, interface: str = "hconv", batch_frames=2000):
    """The pieces the training pipeline builds: datasets, task, model, optimizer, train batches."""
    import torch

    from featcache.pipelines.train import prepare
    from featcache.train.blocks import WindowSampler
    from featcache.train.config import TrainConfig

    config = TrainConfig(cache=str(cache), out="", upstreams=list(upstreams), interface=interface,
                         label="speaker", batch_frames=batch_frames, device="cpu")  # fmt: skip
    parts = prepare(config, print)
    train = parts["datasets"]["train"]
    sampler = WindowSampler(train, batch_frames, shuffle=True, seed=0).batches()  # epoch 0
    model = parts["model"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return parts, train, sampler, model, optimizer


def train_step(model, optimizer, task, batch) -> float:
    outputs = model(batch["features"], batch["mask"])
    loss = task.loss(outputs, batch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def cached_epoch(
    parts, train, sampler, model, optimizer, workers: int, stats=None, memory: str = "off"
) -> float:
    """One epoch fed by the trainer's loader (``build_loader`` with ``--loader blocks``, the
    online epoch's plan: the block loader over frames, batches cut by indexing over pooled
    means; then ``to_float32``, as in ``Trainer.train_epoch`` on CPU, held in memory beforehand
    with ``memory`` ``auto``); ``stats`` (a dict) receives the first batch's wait."""
    from featcache.train.config import TrainConfig
    from featcache.train.data import to_float32
    from featcache.train.distributed import Dist
    from featcache.train.loaders import build_loader, hold_in_memory

    task = parts["task"]
    hold_in_memory({"train": train}, memory)
    config = TrainConfig(loader="blocks", num_workers=workers, batch_frames=2000, seed=0)
    loader = build_loader(train, config, task.collate, True, False, Dist())
    started = time.perf_counter()
    for n, batch in enumerate(loader):
        if n == 0 and stats is not None:
            stats["first_batch_s"] = time.perf_counter() - started
        train_step(model, optimizer, task, to_float32(batch))
    return time.perf_counter() - started


def online_epoch(parts, train, sampler, model, optimizer, manifest, upstreams) -> float:
    """Same batches, but the hidden states come from running the upstreams on the audio."""
    import torch

    from featcache.audio import load_utterance
    from featcache.fusion.align import resample_frames
    from featcache.train.data import collate
    from featcache.upstreams import load_upstream

    task = parts["task"]
    models = [load_upstream(name) for name in upstreams]
    started = time.perf_counter()
    for indices in sampler:
        ids = [train.ids[i] for i in indices]
        wavs = [load_utterance(manifest[u]) for u in ids]
        with torch.no_grad():
            hidden = [up.forward(wavs) for up in models]  # per model: list of (L, T, D)
        items = []
        for b, i in enumerate(indices):
            feats = []
            for per_model in hidden:
                x = torch.from_numpy(per_model[b]).permute(1, 0, 2)  # (T, L, D)
                if x.shape[0] != train.lengths[i]:
                    x = resample_frames(x, train.lengths[i])
                feats.append(x)
            items.append({"id": ids[b], "features": feats, "target": train.targets[i]})
        train_step(model, optimizer, task, collate(items, task.collate))
    return time.perf_counter() - started


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=56)
    parser.add_argument("--interface", default="hconv")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory", choices=["auto", "off"], default="auto")
    parser.add_argument("--work", type=Path, help="keep the corpus and cache here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        if (work / "cache").exists():
            from featcache.manifest import Manifest

            cache, manifest = work / "cache", Manifest.load(work / "cache" / "manifest.jsonl")
            print(f"reusing {cache}")
        else:
            cache, manifest, audio_s, extract_s = build_cache(work, args.utterances)
            print(f"corpus: {len(manifest)} utterances, {audio_s:.1f} s of audio; "
                  f"cache built in {extract_s:.1f} s (not part of the ratio)")  # fmt: skip
        setup = setup_training(cache, interface=args.interface)
        train_audio = sum(setup[1].lengths) / 50
        print(f"training split: {len(setup[1])} utterances, {train_audio:.1f} s of audio, "
              f"{len(setup[2])} batches, params {setup[3].param_counts()}")  # fmt: skip
        cached_runs, online_runs = [], []
        for _ in range(args.repeats):  # alternate, so both see the same machine load
            torch.manual_seed(0)
            setup = setup_training(cache, interface=args.interface)
            seconds = cached_epoch(*setup, workers=args.workers, memory=args.memory)
            cached_runs.append(round(seconds, 3))
            torch.manual_seed(0)
            setup = setup_training(cache, interface=args.interface)
            online_runs.append(round(online_epoch(*setup, manifest, UPSTREAMS), 2))
    cached, online = min(cached_runs), min(online_runs)
    print(f"interface {args.interface} (data: {setup[0]['data_path']['source']}), "
          f"{args.threads} torch threads, memory {args.memory}, {args.workers} loader workers")  # fmt: skip
    print(f"epoch from cache:            {cached:8.3f} s  (best of {cached_runs})")
    print(f"epoch with online upstreams: {online:8.2f} s  (best of {online_runs})")
    print(f"ratio online / cached:       {online / cached:8.1f}x  (target >= 20x)")


if __name__ == "__main__":
    main()
