"""int8 stores vs float16 and vs lossy alternatives (lilcom as lhotse uses it, numcodecs filters).

Run: ``.venv/bin/python benchmarks/int8_store.py [--utterances 60] [--repeat 3]``

Hidden states come from real upstream forwards over the demo corpus (``featcache demo-data``,
synthesized speech): Whisper tiny.en (``/work/shared/models/whisper-tiny.en`` or ``--whisper``)
and a base-size random-initialised HuBERT (``random:hubert-base``, 13 x 768). The float32 values
are the reference.

1. Error per layer, int8 and float16 vs float32: mean relative error ``sum|x' - x| / sum|x|``,
   max relative error over frames ``max_t ||x'_t - x_t|| / ||x_t||``, and linear CKA between the
   int8 and the float16 version of each layer.
2. The same float32 array (all frames of the corpus in one part) stored each way: bytes on disk,
   write time, full read and one-layer read (to float32), and the worst layer's errors:
   featcache float16 and int8 stores (the real write path; Zarr and HDF5, lz4; int8 with zstd),
   lilcom at lhotse's tick (2^-5, lhotse's ``LilcomChunkyWriter`` default) and finer ones
   (2^-6 .. 2^-8), numcodecs BitRound on
   float16 and Quantize on float32 (Zarr v3 filters + Blosc zstd), each in the same
   (1024 frames, 1 layer, D) chunks. Times: fastest of ``--repeat`` runs, side by side.
3. Per-utterance ``get`` (what the training loader calls) from float16 and int8 stores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

WHISPER = "/work/shared/models/whisper-tiny.en"
C = 1024  # frames per chunk, as featcache.store.base.CHUNK_FRAMES


def fastest(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def corpus(root: Path, n: int):
    """The first ``n`` utterances of the demo corpus: (manifest, [(id, wav)])."""
    from featcache.audio import load_utterance
    from featcache.demo_data import make_demo_corpus
    from featcache.manifest import Manifest

    manifest = Manifest.load(make_demo_corpus(root / "corpus", utterances=max(n, 30)))
    manifest = Manifest.from_records([_record(u) for u in manifest.utterances[:n]])
    return manifest, [(u.id, load_utterance(u)) for u in manifest.utterances]


def _record(u):
    return {"id": u.id, "audio": u.audio, **dict(u.fields)}


def hidden_states(upstream: str, wavs) -> dict[str, np.ndarray]:
    """utt id -> float32 (T, L, D), one forward per utterance."""
    from featcache.upstreams import load_upstream

    model = load_upstream(upstream, device="cpu")
    return {u: model.forward([w])[0].transpose(1, 0, 2) for u, w in wavs}  # (T, L, D)


def errors(x: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per layer of (F, L, D): mean relative error and max per-frame relative error."""
    diff = np.abs(x - ref)
    mean_rel = diff.sum(axis=(0, 2)) / np.abs(ref).sum(axis=(0, 2))
    frame_rel = np.linalg.norm(x - ref, axis=2) / np.maximum(np.linalg.norm(ref, axis=2), 1e-12)
    return mean_rel, frame_rel.max(axis=0)


def stored(tmp: Path, arrays, manifest, dtype, part_size, compression="lz4", format="zarr"):
    """Write a real featcache store; return its path and the float32 frames read back."""
    from featcache import open_cache
    from featcache.testing.caches import write_cache

    path = write_cache(tmp / dtype, "up", arrays, manifest, dtype=dtype, part_size=part_size,
                       compression=compression, format=format)  # fmt: skip
    reader = open_cache(path)
    return path, np.concatenate([reader.get(u) for u in arrays])


def error_table(name: str, arrays, manifest, tmp: Path) -> None:
    from featcache.analysis.cka import linear_cka

    ref = np.concatenate(list(arrays.values()))  # (F, L, D) float32
    _, int8 = stored(tmp / name, arrays, manifest, "int8", 32)  # extract's default parts
    f16 = ref.astype(np.float16).astype(np.float32)
    e8, e16 = errors(int8, ref), errors(f16, ref)
    print(f"\n{name}: {len(arrays)} utterances, {ref.shape[0]} frames, L={ref.shape[1]}, "
          f"D={ref.shape[2]}; errors vs the float32 forward")  # fmt: skip
    print(
        "layer  int8 mean rel  int8 max rel  float16 mean rel  float16 max rel  CKA(int8, float16)"
    )
    for layer in range(ref.shape[1]):
        cka = linear_cka(int8[:, layer], f16[:, layer])
        print(f"{layer:5d}  {e8[0][layer]:13.2e}  {e8[1][layer]:12.2e}  {e16[0][layer]:16.2e}  "
              f"{e16[1][layer]:15.2e}  {cka:.6f}")  # fmt: skip


# ---- section 2: the same array stored each way -------------------------------------------------


def featcache_variant(dtype, tmp, arrays, manifest, repeat, compression="lz4", format="zarr"):
    from featcache import open_cache
    from featcache.store.int8 import read_dequantized

    args = (arrays, manifest, dtype, len(arrays), compression, format)  # one part
    write, _ = fastest(lambda: stored(tmp / f"w{time.perf_counter_ns()}", *args), repeat)
    path, _ = stored(tmp, *args)
    handle = open_cache(path)._open()
    frames = handle.frames(0)

    def read(cols=None):
        if dtype == "int8":
            return read_dequantized(frames, handle.scale(0), slice(None), C, cols)
        return np.asarray(frames[(slice(None), *(cols or ()))], dtype=np.float32)

    full_t, full = fastest(read, repeat)
    layer_t, _ = fastest(lambda: read((1,)), repeat)
    size = disk_bytes(path / "parts") if format == "zarr" else _hdf5_frame_bytes(path)
    return size, write, full_t, layer_t, full


def _hdf5_frame_bytes(path: Path) -> int:
    """Stored bytes of every part's frames and scale datasets (not the index)."""
    import h5py

    with h5py.File(path, "r") as f:
        parts = f["parts"].values()
        names = ("frames", "scale")
        return sum(g[n].id.get_storage_size() for g in parts for n in names if n in g)


def zarr_filter_variant(kind, tmp, x, repeat):
    import zarr
    from zarr.codecs import BloscCodec
    from zarr.codecs.numcodecs import BitRound, Quantize

    warnings.filterwarnings("ignore", "Numcodecs codecs are not in the Zarr version 3")
    if kind.startswith("bitround"):
        keep = int(kind.split("-")[1])
        dtype, filters = "float16", [BitRound(keepbits=keep)]
    else:
        digits = int(kind.split("-")[1])
        dtype, filters = "float32", [Quantize(digits=digits, dtype="float32")]
    compressors = [BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle")]
    data = x.astype(dtype)

    def write():
        path = tmp / kind
        shutil.rmtree(path, ignore_errors=True)
        arr = zarr.create_array(str(path), shape=x.shape, chunks=(C, 1, x.shape[2]), dtype=dtype,
                                filters=filters, compressors=compressors)  # fmt: skip
        arr[...] = data
        return path

    write_t, path = fastest(write, repeat)
    arr = zarr.open_array(str(path), mode="r")
    full_t, full = fastest(lambda: arr[...].astype(np.float32), repeat)
    layer_t, _ = fastest(lambda: arr[:, 1].astype(np.float32), repeat)
    return disk_bytes(path), write_t, full_t, layer_t, full


def lilcom_variant(tick, tmp, x, repeat):
    """lilcom per (1024 frames, layer) block, one file per block (as zarr chunk files)."""
    import lilcom

    path = tmp / f"lilcom{tick}"
    blocks = [(r, layer) for r in range(0, len(x), C) for layer in range(x.shape[1])]

    def write():
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        for r, layer in blocks:  # lilcom quantises its input in place: give it a copy
            blob = lilcom.compress(np.array(x[r : r + C, layer]), tick_power=tick)
            (path / f"{r // C}.{layer}").write_bytes(blob)

    def read(layers):
        out = np.empty((len(x), len(layers), x.shape[2]), np.float32)
        for r in range(0, len(x), C):
            for j, layer in enumerate(layers):
                out[r : r + C, j] = lilcom.decompress((path / f"{r // C}.{layer}").read_bytes())
        return out

    write_t, _ = fastest(write, repeat)
    full_t, full = fastest(lambda: read(range(x.shape[1])), repeat)
    layer_t, _ = fastest(lambda: read([1]), repeat)
    return disk_bytes(path), write_t, full_t, layer_t, full


def io_table(arrays, manifest, tmp: Path, repeat: int) -> None:
    from featcache.analysis.cka import linear_cka

    x = np.concatenate(list(arrays.values()))  # (F, L, D) float32
    rows = {
        "featcache float16": featcache_variant("float16", tmp / "f16", arrays, manifest, repeat),
        "featcache int8": featcache_variant("int8", tmp / "i8", arrays, manifest, repeat),
        "featcache int8, zstd": featcache_variant(
            "int8", tmp / "i8z", arrays, manifest, repeat, "zstd"
        ),
        "featcache float16, HDF5": featcache_variant(
            "float16", tmp / "h16", arrays, manifest, repeat, format="hdf5"
        ),
        "featcache int8, HDF5": featcache_variant(
            "int8", tmp / "h8", arrays, manifest, repeat, format="hdf5"
        ),
        "lilcom tick 2^-5 (lhotse)": lilcom_variant(-5, tmp, x, repeat),
        "lilcom tick 2^-6": lilcom_variant(-6, tmp, x, repeat),
        "lilcom tick 2^-7": lilcom_variant(-7, tmp, x, repeat),
        "lilcom tick 2^-8": lilcom_variant(-8, tmp, x, repeat),
        "numcodecs BitRound(3) fp16": zarr_filter_variant("bitround-3", tmp, x, repeat),
        "numcodecs BitRound(5) fp16": zarr_filter_variant("bitround-5", tmp, x, repeat),
        "numcodecs Quantize(2) fp32": zarr_filter_variant("quantize-2", tmp, x, repeat),
    }
    base = rows["featcache float16"]
    print(f"\nThe same {x.shape} float32 array stored each way (Zarr, chunks ({C}, 1, D); times are "
          f"the fastest of {repeat}; ratios vs featcache float16 in the same run)")  # fmt: skip
    print(f"{'variant':28s} {'bytes':>10s} {'x f16':>6s} {'write':>7s} {'full read':>10s} "
          f"{'1-layer':>8s} {'mean rel':>9s} {'max rel':>8s} {'min CKA':>8s}")  # fmt: skip
    for name, (size, write, full_t, layer_t, values) in rows.items():
        mean_rel, max_rel = errors(values, x)
        cka = min(linear_cka(values[:, i], x[:, i]) for i in range(x.shape[1]))
        print(f"{name:28s} {size / 2**20:8.1f}MB {size / base[0]:6.3f} {write / base[1]:6.2f}x "
              f"{full_t / base[2]:9.2f}x {layer_t / base[3]:7.2f}x {mean_rel.max():9.2e} "
              f"{max_rel.max():8.2e} {cka:8.6f}")  # fmt: skip
    print(f"(float16 absolute: write {base[1]:.3f} s, full read {base[2]:.3f} s, one layer "
          f"{base[3]:.3f} s; errors: worst layer vs float32; CKA vs float32)")  # fmt: skip


def loader_reads(arrays, manifest, tmp: Path, repeat: int) -> None:
    """Per-utterance ``get`` as the training loader calls it, float16 vs int8 stores."""
    from featcache import open_cache

    print("\nper-utterance reads as the training loader makes them (extract's part size, 32)")
    times = {}
    for fmt in ("zarr", "hdf5"):
        for dtype, out in (("float16", None), ("float16", np.float32), ("int8", None)):
            path, _ = stored(tmp / f"{fmt}-{dtype}", arrays, manifest, dtype, 32, format=fmt)
            reader = open_cache(path)
            t, _ = fastest(lambda r=reader, o=out: [r.get(u, dtype=o) for u in arrays], repeat)
            label = f"{fmt:4s} {dtype} get({'dtype=None' if out is None else 'float32'})"
            times[label] = t
    first = next(iter(times.values()))
    for label, t in times.items():
        ms = 1000 * t / len(arrays)
        print(f"  {label:36s} {ms:7.2f} ms/utterance  {t / first:5.2f}x")
    print("  (float16 get(dtype=None) returns float16, cast on the training device; int8 returns "
          "float32)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utterances", type=int, default=60, help="Whisper tiny.en utterances")
    ap.add_argument("--base-utterances", type=int, default=8, help="random:hubert-base ones")
    ap.add_argument("--whisper", default=WHISPER)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest, wavs = corpus(tmp, args.utterances)
        whisper = hidden_states(args.whisper, wavs)
        error_table("whisper-tiny.en", whisper, manifest, tmp)
        base_ids = manifest.ids()[: args.base_utterances]
        base_manifest = manifest.__class__.from_records([_record(manifest[u]) for u in base_ids])
        base = hidden_states("random:hubert-base", [w for w in wavs if w[0] in set(base_ids)])
        error_table("random:hubert-base (untrained)", base, base_manifest, tmp)
        io_table(whisper, manifest, tmp / "io", args.repeat)
        loader_reads(whisper, manifest, tmp / "loader", args.repeat)


if __name__ == "__main__":
    main()
