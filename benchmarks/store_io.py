"""Store write/read throughput vs raw numpy file I/O of the same arrays, Zarr and HDF5.

Run: ``.venv/bin/python benchmarks/store_io.py [--frames 8192 --layers 13 --dim 768]``

Writes one part's worth of float16 hidden states ``(F, L, D)`` with several chunk/codec layouts,
then reads everything, and one layer, back. Ratios are against ``np.save``/``np.load`` of the same
array on the same disk (reads come from the page cache for every variant alike; this measures the
CPU cost of the format, which is what differs). The featcache rows go through the real write path
(PartWriter on a writer thread, then the index) and the real reader (``get`` and ``layer(l)``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def hidden_states(frames, layers, dim, seed=0):
    """Hidden-state-like float16 values: per-layer scale, smooth over time, a few large dims."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((frames, layers, dim), dtype=np.float32)
    base[1:] = 0.6 * base[1:] + 0.4 * base[:-1]  # neighbouring frames correlate
    base *= np.linspace(0.5, 3.0, layers, dtype=np.float32)[None, :, None]
    base[:, :, :4] *= 20  # outlier dimensions, as in real transformers
    return base.astype(np.float16)


def real_hidden_states(upstream: str, frames: int) -> np.ndarray:
    """float16 ``(frames, L, D)`` from a real model over espeak-ng speech (repeated sentences)."""
    import subprocess

    from featcache.audio import load_audio
    from featcache.upstreams import load_upstream

    model = load_upstream(upstream, device="cpu")
    text = (
        "Speech foundation models turn a waveform into a stack of hidden layers. "
        "Each layer keeps a different view of the same sentence, from sounds to words. "
    ) * 6
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(wav_path), text], check=True)
        wav = load_audio(wav_path)
    pieces, have = [], 0
    while have < frames:
        hidden = model.forward([wav])[0].transpose(1, 0, 2)  # (T, L, D)
        pieces.append(hidden)
        have += len(hidden)
    return np.concatenate(pieces)[:frames].astype(np.float16)


def zarr_variant(path, x, chunks, codec, shards=None):
    import zarr
    from zarr.codecs import BloscCodec, ZstdCodec

    compressors = {
        "blosc-zstd1": [BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")],
        "lz4": [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")],
        "zstd1": [ZstdCodec(level=1)],
        "none": None,
    }[codec]
    arr = zarr.create_array(
        str(path), shape=x.shape, chunks=chunks, shards=shards, dtype=x.dtype,
        compressors=compressors,
    )  # fmt: skip
    write, _ = timed(lambda: arr.__setitem__(slice(None), x))
    arr = zarr.open_array(str(path), mode="r")
    full, _ = timed(lambda: arr[:])
    one, _ = timed(lambda: arr[:, x.shape[1] // 2, :])
    return write, full, one


def hdf5_variant(path, x, chunks, codec):
    import h5py
    import hdf5plugin

    comp = {
        "blosc-zstd1": dict(hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=1)),
        "lz4": dict(hdf5plugin.Blosc(cname="lz4", clevel=1, shuffle=1)),
        "zstd1": dict(hdf5plugin.Zstd(clevel=1)),
        "none": {},
    }
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("frames", shape=x.shape, chunks=chunks, dtype=x.dtype, **comp[codec])
        write, _ = timed(lambda: ds.__setitem__(slice(None), x))
    with h5py.File(path, "r") as f:
        full, _ = timed(lambda: f["frames"][:])
        one, _ = timed(lambda: f["frames"][:, x.shape[1] // 2, :])
    return write, full, one


def featcache_variant(root, x, fmt):
    """The real path: PartWriter (writer thread) + index, then CacheReader.get / layer()."""
    from featcache.manifest import Manifest
    from featcache.store import open_cache
    from featcache.store.builder import StoreBuilder, make_attrs, open_part

    frames, layers, dim = x.shape
    per = 500  # 10 s utterances
    ids = [f"u{i}" for i in range(frames // per)]
    manifest = Manifest.from_records([{"id": u, "audio": "/x.wav"} for u in ids])
    manifest.write(root / "manifest.jsonl")
    attrs = make_attrs(
        provenance={"name": "bench", "source": "benchmark"}, sample_rate=16000, frame_rate=50.0,
        model_num_layers=layers, hidden_size=dim, layers=list(range(layers)), dtype="float16",
        manifest_sha256=manifest.sha256(), policy={},
    )  # fmt: skip
    hidden = x.astype(np.float32).transpose(1, 0, 2)  # (L, F, D) as an upstream returns

    def write():
        path = root / f"bench{'.zarr' if fmt == 'zarr' else '.h5'}"
        builder = StoreBuilder(path, fmt, attrs, ids, part_size=len(ids))
        with ThreadPoolExecutor(1) as ex:
            part = open_part(path, fmt, 0, attrs, ex)
            for i, u in enumerate(ids):
                part.add(u, hidden[:, i * per : (i + 1) * per])
            part.close().result()
        builder.finalize()

    t_write, _ = timed(write)
    reader = open_cache(root)
    reader.get(ids[0]), reader.layer(0)[:1].compute()  # warm up: dask import, thread pool
    full, _ = timed(lambda: [reader.get(u) for u in ids])
    one, _ = timed(lambda: reader.layer(layers // 2).compute())
    return t_write, full, one


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=13)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--dir", default=None, help="folder on the disk to test (default: tmp)")
    ap.add_argument("--real", default=None, metavar="UPSTREAM",
                    help="use a real model's hidden states of espeak-ng speech (sets L and D)")  # fmt: skip
    args = ap.parse_args()
    if args.real:
        x = real_hidden_states(args.real, args.frames)
        args.layers, args.dim = x.shape[1:]
    else:
        x = hidden_states(args.frames, args.layers, args.dim)
    mb = x.nbytes / 2**20
    root = Path(tempfile.mkdtemp(prefix="featcache-store-io-", dir=args.dir))
    L, D = args.layers, args.dim
    what = f"{args.real} hidden states of speech" if args.real else "synthetic hidden states"
    print(f"{what} (F={args.frames}, L={L}, D={D}) float16 = {mb:.0f} MB, in {root}")
    try:
        raw = root / "raw.npy"
        w, _ = timed(lambda: np.save(raw, x))
        full, _ = timed(lambda: np.load(raw))
        one, _ = timed(lambda: np.array(np.load(raw, mmap_mode="r")[:, L // 2, :]))
        rows = [("raw numpy (np.save/np.load)", w, full, one, raw.stat().st_size)]
        variants = [
            ("zarr (1024,1,D) blosc-lz4 [default]", "zarr", ((1024, 1, D), "lz4")),
            ("zarr (1024,L,D) blosc-lz4", "zarr", ((1024, L, D), "lz4")),
            (
                "zarr (1024,1,D) blosc-zstd1 [--compression zstd]",
                "zarr",
                ((1024, 1, D), "blosc-zstd1"),
            ),
            ("zarr (1024,1,D) zstd-1 (no blosc)", "zarr", ((1024, 1, D), "zstd1")),
            ("zarr (1024,1,D) uncompressed [--compression none]", "zarr", ((1024, 1, D), "none")),
            ("zarr shards (8192,L,D) of (1024,1,D) lz4", "zarr-shard", ((1024, 1, D), "lz4")),
            ("hdf5 (1024,1,D) blosc-lz4 [default]", "hdf5", ((1024, 1, D), "lz4")),
            ("hdf5 (1024,L,D) blosc-lz4", "hdf5", ((1024, L, D), "lz4")),
            ("hdf5 (1024,1,D) blosc-zstd1", "hdf5", ((1024, 1, D), "blosc-zstd1")),
            ("hdf5 (1024,1,D) uncompressed", "hdf5", ((1024, 1, D), "none")),
        ]
        for i, (label, kind, (chunks, codec)) in enumerate(variants):
            path = root / f"v{i}"
            if kind == "zarr":
                times = zarr_variant(path, x, chunks, codec)
            elif kind == "zarr-shard":
                times = zarr_variant(path, x, chunks, codec, shards=(8192, L, D))
            else:
                times = hdf5_variant(path, x, chunks, codec)
            rows.append((label, *times, _size(path)))
        for fmt in ("zarr", "hdf5"):
            sub = root / f"featcache-{fmt}"
            sub.mkdir()
            rows.append((f"featcache {fmt} extract path + reader", *featcache_variant(sub, x, fmt),
                         _size(sub)))  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = rows[0]
    print(f"{'variant':50s} {'write MB/s':>10s} {'read MB/s':>10s} {'1-layer ms':>10s} "
          f"{'write/raw':>9s} {'read/raw':>9s} {'layer/raw':>9s} {'ratio':>6s}")  # fmt: skip
    for label, w, full, one, size in rows:
        print(
            f"{label:50s} {mb / w:10.0f} {mb / full:10.0f} {one * 1000:10.1f} "
            f"{base[1] / w:9.2f} {base[2] / full:9.2f} {base[3] / one:9.2f} "
            f"{x.nbytes / size:6.2f}"
        )
    print("x/raw columns: speed relative to raw numpy (>1 = faster); ratio = compression ratio")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


if __name__ == "__main__":
    main()
