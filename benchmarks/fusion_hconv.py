"""HConv forward + backward: matmuls over the unfolded layer axis vs ``nn.Conv1d``.

    .venv/bin/python benchmarks/fusion_hconv.py [--frames 3000] [--threads 2] [--repeats 3]

Same module, same parameters, same input ``(L, 1, frames, D)`` for the shapes of Whisper
tiny.en (5 x 384) and a base-size model (13 x 768); the two paths alternate and the fastest of
``--repeats`` of each counts (the machine is shared). Prints seconds and the ratio.
"""

from __future__ import annotations

import argparse
import time


def timed(fn, x) -> float:
    started = time.perf_counter()
    fn(x).sum().backward()
    return time.perf_counter() - started


def main() -> None:
    import torch

    from featcache.fusion.hconv import HConv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for layers, dim in [(5, 384), (13, 768)]:
        hconv = HConv(layers, dim)
        x = torch.randn(layers, 1, args.frames, dim, requires_grad=True)
        fast, conv = [], []
        for _ in range(args.repeats):
            fast.append(timed(hconv.fuse, x))
            conv.append(timed(hconv.fuse_conv1d, x))
        print(f"L={layers:2d} D={dim}: matmul {min(fast):.3f} s, Conv1d {min(conv):.3f} s, "
              f"Conv1d / matmul {min(conv) / min(fast):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
