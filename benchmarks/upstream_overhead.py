"""Upstream.forward vs a bare transformers forward loop over the same audio (same model, same run).

    .venv/bin/python benchmarks/upstream_overhead.py [--upstream random:hubert-base] [--seconds 60]

Prints the wall time of each and their ratio: the cost featcache's wrapper adds (input checks,
batch assembly, stacking the hidden states into (L, T, D) float32 arrays) on top of the model.
Each utterance runs through both, interleaved in alternating order; the best of ``--repeats``
per utterance counts (the machine may be shared). ``forward(list)`` passes all utterances at once.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main():
    import torch

    from featcache.upstreams import load_upstream

    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", default="random:hubert-base")
    parser.add_argument("--seconds", type=float, default=60.0, help="total audio")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    up = load_upstream(args.upstream)
    rng = np.random.default_rng(0)
    wavs, total = [], 0
    while total < args.seconds * 16000:  # 2-8 s utterances, all lengths different
        n = int(rng.uniform(2, 8) * 16000)
        wavs.append((0.1 * rng.standard_normal(n)).astype(np.float32))
        total += n
    model = up.model

    def bare(wav):
        with torch.inference_mode():
            out = model(torch.from_numpy(wav)[None], output_hidden_states=True)
            torch.stack(out.hidden_states)  # (L, 1, T, D): the layers, as any cache needs

    def featcache_forward(wav):
        up.forward([wav])

    # Paired and interleaved per utterance, the order alternating, best of --repeats per
    # utterance: the machine is shared, so a slow moment should not land on one side only.
    runs = {"bare": bare, "Upstream.forward": featcache_forward}
    best = {label: [float("inf")] * len(wavs) for label in runs}
    for repeat in range(args.repeats):
        for i, wav in enumerate(wavs):
            order = list(runs) if (repeat + i) % 2 == 0 else list(runs)[::-1]
            for label in order:
                start = time.perf_counter()
                runs[label](wav)
                best[label][i] = min(best[label][i], time.perf_counter() - start)
    start = time.perf_counter()
    up.forward(wavs)
    as_list = time.perf_counter() - start
    bare_total = sum(best["bare"])
    print(
        f"upstream {args.upstream}: {len(wavs)} utterances, {total / 16000:.1f} s of audio, "
        f"{args.threads} thread(s), policy {up.policy['batching']}, best of {args.repeats}"
    )
    for label, times in best.items():
        print(f"  {label:18s} {sum(times):7.2f} s   ratio to bare {sum(times) / bare_total:.3f}")
    print(
        f"  forward(list)      {as_list:7.2f} s   ratio to bare {as_list / bare_total:.3f} (one run)"
    )


if __name__ == "__main__":
    main()
