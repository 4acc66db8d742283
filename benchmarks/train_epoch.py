"""Seconds per training epoch: ``featcache train`` vs an in-memory loop of the same model and batches.

    .venv/bin/python benchmarks/train_epoch.py [--utterances 150] [--threads 2] [--repeats 2]
        [--work DIR]

Caches (float16, as ``extract`` writes them) of Whisper tiny.en (real weights from
``../shared/models/whisper-tiny.en`` when present, else ``random:tiny-whisper``) and the
base-size random-init ``random:hubert-base`` (768 x 12) over an espeak-ng corpus. For each of
tiny.en ``ws``, tiny.en ``hconv`` and tiny.en + hubert-base ``hconv`` (classify on speaker):

- ``featcache train`` with the frames held in memory (``--cache-in-memory auto``, with the
  loader ``--loader auto`` chooses, printed) and streamed from disk (``--cache-in-memory off``,
  ``--loader blocks``, the loader for corpora that stream, 2 workers; the files are in the page
  cache); the epoch's seconds come from metrics.jsonl (the training pass, without the dev
  evaluation);
- an in-memory loop written here: the same model (``prepare``), the same batches (the plan of
  the loader featcache used), collated and cast to float32 beforehand, then forward, backward, clipping and
  an AdamW step, nothing else. It uses the same identities (pooled means for ``ws``, HConv as
  matmuls, the head's projection after pooling), since they are exact.

Then ``ws`` via the pooled shortcut vs via frames (``--pooled off``, held in memory and
streamed). Each configuration runs ``--repeats`` times, alternating; the fastest epoch of each
counts, because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

TINY_EN = Path(__file__).resolve().parents[1] / ".." / "shared" / "models" / "whisper-tiny.en"
BASE = "random:hubert-base"


def tiny_en() -> str:
    return (
        str(TINY_EN.resolve())
        if (TINY_EN / "model.safetensors").exists()
        else "random:tiny-whisper"
    )


def build(work: Path, utterances: int) -> tuple[Path, dict[str, str]]:
    """Corpus + float16 caches of tiny.en and the base-size model; store names by role."""
    from featcache.audio import load_utterance
    from featcache.manifest import Manifest
    from featcache.testing.caches import write_cache
    from featcache.testing.corpus import make_speech_corpus
    from featcache.upstreams import load_upstream

    cache = work / "cache"
    names = {}
    corpus = work / "corpus"
    if (corpus / "manifest.jsonl").exists():
        manifest = Manifest.load(corpus / "manifest.jsonl")
    else:
        manifest = make_speech_corpus(corpus, utterances=utterances)
    wavs = None
    for role, name in (("tiny", tiny_en()), ("base", BASE)):
        up = load_upstream(name)
        names[role] = up.slug
        if (cache / f"{up.slug}.zarr").exists():
            continue
        wavs = wavs or [load_utterance(u) for u in manifest]
        hidden = up.forward(wavs)
        arrays = {u.id: h.transpose(1, 0, 2) for u, h in zip(manifest, hidden, strict=True)}
        write_cache(cache, up.slug, arrays, manifest, up.frame_rate, dtype="float16",
                    part_size=64)  # fmt: skip
    return cache, names


def config(cache: Path, upstreams, interface: str, out: str = "", **kw):
    from featcache.train.config import TrainConfig

    values = dict(cache=str(cache), out=out, upstreams=list(upstreams), interface=interface,
                  label="speaker", epochs=2, patience=2, batch_frames=2000, device="cpu",
                  num_workers=2, seed=0)  # fmt: skip
    values.update(kw)
    return TrainConfig(**values)


def featcache_epoch(cache, upstreams, interface, **kw) -> tuple[float, dict]:
    """Fastest epoch of a real ``featcache train`` run (seconds from metrics.jsonl)."""
    from featcache.pipelines.train import train

    out = Path(tempfile.mkdtemp(prefix="bench-run-"))
    try:
        summary = train(config(cache, upstreams, interface, str(out / "run"), **kw), log=_quiet)
        lines = (out / "run" / "metrics.jsonl").read_text().splitlines()
        return min(json.loads(line)["seconds"] for line in lines), summary
    finally:
        shutil.rmtree(out, ignore_errors=True)


def memory_epoch(cache, upstreams, interface, loader: str) -> float:
    """Fastest epoch of the plain loop over pre-collated float32 batches in memory, cut by the
    plan of ``loader`` (the one ``featcache train`` used)."""
    import torch

    from featcache.pipelines.train import prepare
    from featcache.train.blocks import WindowSampler
    from featcache.train.data import Collate, FrameBatchSampler, to_float32

    parts = prepare(config(cache, upstreams, interface), _quiet)
    train, task, model = parts["datasets"]["train"], parts["task"], parts["model"]
    if not train.in_memory:
        train.hold()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    collate = Collate(task.collate)
    best = float("inf")
    for epoch in range(2):
        if loader == "blocks":
            plan = WindowSampler(train, 2000, shuffle=True, seed=0)
            plan.set_epoch(epoch)
            plan = plan.batches()
        else:
            plan = FrameBatchSampler(train.lengths, 2000, shuffle=True, seed=0, epoch=epoch)
        batches = [to_float32(collate([train[i] for i in b])) for b in plan]
        started = time.perf_counter()
        for batch in batches:
            loss = task.loss(model(batch["features"], batch["mask"]), batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            float(loss.detach())
        best = min(best, time.perf_counter() - started)
    return best


def _quiet(line: str) -> None:
    pass


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, help="keep (or reuse) the corpus and caches here")
    parser.add_argument("--cases", default="ws,hconv,base",
                        help="which of ws, hconv (tiny.en), base (tiny.en + base hconv), basews "
                             "(base-size ws, pooled vs frames) to run")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        started = time.perf_counter()
        cache, names = build(work, args.utterances)
        print(f"caches {sorted(names.values())} ready in {time.perf_counter() - started:.0f} s "
              f"(tiny.en: {tiny_en()})")  # fmt: skip
        tiny, both = [names["tiny"]], [names["tiny"], names["base"]]
        cases = [("tiny.en ws", tiny, "ws"), ("tiny.en hconv", tiny, "hconv"),
                 ("tiny.en + base hconv", both, "hconv")]  # fmt: skip
        chosen = args.cases.split(",")
        cases = [c for c, key in zip(cases, ("ws", "hconv", "base"), strict=True) if key in chosen]
        times: dict[tuple[str, str], list[float]] = {}
        paths: dict[str, str] = {}
        loaders: dict[str, str] = {}
        for _ in range(args.repeats):
            for label, ups, interface in cases:
                held, summary = featcache_epoch(cache, ups, interface, cache_in_memory="auto")
                paths[label] = f"{summary['data_path']['source']}, {summary['loader']}"
                times.setdefault((label, "held"), []).append(held)
                stream, _ = featcache_epoch(cache, ups, interface, cache_in_memory="off",
                                            loader="blocks")  # fmt: skip
                times.setdefault((label, "stream"), []).append(stream)
                for loader in sorted({summary["loader"], "blocks"}):
                    loop = memory_epoch(cache, ups, interface, loader)
                    times.setdefault((label, f"loop {loader}"), []).append(loop)
                loaders[label] = summary["loader"]
            frame_runs = [("frames held", "auto", "auto"), ("frames streamed", "off", "blocks")]
            for mode, memory, loader in frame_runs[: 2 * ("ws" in chosen)]:
                seconds, _ = featcache_epoch(cache, tiny, "ws", pooled="off",
                                             cache_in_memory=memory, loader=loader)  # fmt: skip
                times.setdefault(("tiny.en ws", mode), []).append(seconds)
            if "basews" in chosen:  # a base-size model: 5x the bytes per frame of tiny.en
                for mode, pooled in (("pooled", "auto"), ("frames held", "off")):
                    seconds, _ = featcache_epoch(cache, [names["base"]], "ws", pooled=pooled)
                    times.setdefault(("base ws", mode), []).append(seconds)
    best = {k: min(v) for k, v in times.items()}
    print(f"{args.threads} torch threads; fastest epoch of {args.repeats} runs each (seconds)")
    print(f"{'case':22s} {'held: data, loader':24s} {'loop':>8s} {'held':>8s} "
          f"{'blocks loop':>11s} {'stream':>8s} {'held/loop':>10s} {'stream/loop':>12s}")  # fmt: skip
    for label in loaders:
        loop, held = best[(label, f"loop {loaders[label]}")], best[(label, "held")]
        loop_blocks, stream = best[(label, "loop blocks")], best[(label, "stream")]
        print(f"{label:22s} {paths[label]:24s} {loop:8.3f} {held:8.3f} {loop_blocks:11.3f} "
              f"{stream:8.3f} {held / loop:9.2f}x {stream / loop_blocks:11.2f}x")  # fmt: skip
    print("targets: held/loop <= 1.2x, stream/loop <= 2x")
    pooled = best.get(("tiny.en ws", "held"))
    for mode in ("frames held", "frames streamed") if pooled else ():
        frames = best[("tiny.en ws", mode)]
        print(f"ws + classify epoch, {mode} / pooled shortcut: {frames:.3f} s / {pooled:.3f} s "
              f"= {frames / pooled:.1f}x  (target >= 20x)")  # fmt: skip
    if ("base ws", "pooled") in best:
        pooled, frames = best[("base ws", "pooled")], best[("base ws", "frames held")]
        print(f"base ws + classify epoch, frames held / pooled shortcut: {frames:.3f} s / "
              f"{pooled:.3f} s = {frames / pooled:.1f}x  (target >= 20x)")  # fmt: skip


if __name__ == "__main__":
    main()
