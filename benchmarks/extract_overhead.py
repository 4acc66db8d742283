"""Extraction wall time vs a bare forward loop over the same audio with the same model.

Run: ``.venv/bin/python benchmarks/extract_overhead.py [--upstream random:hubert-base]
[--minutes 2] [--device cpu] [--format zarr]``

The bare loop is ``model(wav, output_hidden_states=True)`` per utterance on preloaded audio, the
least any tool must spend. ``featcache extract`` adds reading audio from disk, stacking layers,
float16 conversion, pooling, compression and writing (on CPU in between forwards, since a
concurrent writer thread slows torch's own threads; on GPU on a writer thread that overlaps). Bare loops and extractions alternate (bare, extract, bare, extract, bare) and the
ratio of the fastest runs is reported, which is robust to other load on a shared machine; model
loading is reported apart.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 16000


def make_corpus(root: Path, minutes: float, seed: int = 0) -> Path:
    """Utterances of 4-8 s (distinct lengths, so nothing batches) of tones in noise."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    records, total, i = [], 0.0, 0
    while total < minutes * 60:
        n = int(SR * rng.uniform(4.0, 8.0))
        t = np.arange(n) / SR
        wav = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) + 0.05 * rng.standard_normal(n)
        sf.write(root / f"u{i:03d}.wav", wav.astype(np.float32), SR)
        records.append({"id": f"u{i:03d}", "audio": f"u{i:03d}.wav"})
        total += n / SR
        i += 1
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    return manifest


def bare_loop(model, wavs, device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of plain forwards of every utterance."""
    import torch

    cpu = time.process_time()
    t = time.perf_counter()
    with torch.inference_mode():
        for wav in wavs:
            x = torch.from_numpy(wav)[None].to(device)
            out = model(x, output_hidden_states=True)
            torch.stack(out.hidden_states).cpu()  # what any caller must do to keep the layers
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, time.process_time() - cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", default="random:hubert-base")
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--format", default="zarr", choices=["zarr", "hdf5"])
    ap.add_argument("--repeats", type=int, default=2, help="extract runs (bare loop runs 1 more)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from featcache.audio import load_audio
    from featcache.pipelines.extract import ExtractConfig, extract
    from featcache.upstreams import load_upstream

    root = Path(tempfile.mkdtemp(prefix="featcache-extract-overhead-"))
    manifest = make_corpus(root, args.minutes)
    wavs = [
        load_audio(root / json.loads(line)["audio"]) for line in manifest.read_text().splitlines()
    ]
    seconds = sum(len(w) for w in wavs) / SR
    cpu = time.process_time()
    upstream = load_upstream(args.upstream, device=args.device)
    load_cpu = time.process_time() - cpu
    model, device = upstream.model, upstream.device
    print(f"{args.upstream}: L={upstream.num_layers} D={upstream.hidden_size}, "
          f"{len(wavs)} utterances, {seconds / 60:.2f} min audio, device {device}, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    bare_loop(model, wavs[:1], device)  # warm up
    bares, extracts = [bare_loop(model, wavs, device)], []
    for run in range(args.repeats):
        cache = root / f"cache{run}"
        config = ExtractConfig(manifest, [args.upstream], cache, format=args.format,
                               device=args.device, progress=False)  # fmt: skip
        cpu = time.process_time()
        summary = extract(config).stores[0]
        cpu = time.process_time() - cpu - load_cpu
        extracts.append((summary.wall_seconds - summary.load_seconds, cpu))
        bares.append(bare_loop(model, wavs, device))
    fmt = lambda xs: ", ".join(f"{x:.2f}" for x, _ in xs)  # noqa: E731
    print(f"bare forward loop wall: {fmt(bares)} s (min RTF {min(bares)[0] / seconds:.4f})")
    print(f"featcache extract wall: {fmt(extracts)} s without model load "
          f"(+ {summary.load_seconds:.2f} s load), {summary.num_utterances} utterances, "
          f"store {summary.path.name}")  # fmt: skip
    ratio = min(e[0] for e in extracts) / min(b[0] for b in bares)
    print(f"wall ratio extract / bare (fastest runs) = {ratio:.3f}  "
          f"(overhead {100 * (ratio - 1):+.1f}%; target <= +15%)")  # fmt: skip
    inside = summary.forward_seconds
    other = extracts[-1][0] - inside
    print(f"last extract run: {inside:.2f} s inside upstream.forward, {other:.2f} s everything "
          f"else (audio, cast, pooling, writing, index): overhead {100 * other / inside:+.1f}% "
          f"of the forwards, measured in one run, so insensitive to other load")  # fmt: skip
    cpu_ratio = min(e[1] for e in extracts) / min(b[1] for b in bares)
    print(f"CPU-time ratio extract / bare (fastest runs) = {cpu_ratio:.3f}  "
          f"(CPU time of this process; less sensitive to other load on the machine)")  # fmt: skip
    import shutil

    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
