"""int8 stores (``--dtype int8``): the contract read by plain zarr/h5py, error bounds, readers.

Contract (DESIGN.md, "The layer cache"): ``parts/<k>/frames [F_k, L, D] int8``, ``parts/<k>/scale
[ceil(F_k / C), L, D] float32``, C = ``attrs["featcache"]["chunk_frames"]``; value of frame f is
``frames[f] * scale[f // C]``; scale = max |x| / 127 over the chunk's frames, per layer and channel.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from featcache import open_cache
from featcache.manifest import Manifest
from featcache.store.info import describe_cache, format_table
from featcache.store.int8 import quantize
from featcache.testing.caches import write_cache

FORMATS = ["zarr", "hdf5"]
SR = 16000


def read_plain(path, fmt):
    """utt id -> float32 frames (T, L, D), written from the contract alone (no featcache)."""
    if fmt == "zarr":
        import zarr

        g = zarr.open_group(str(path), mode="r")
        attrs, ids = dict(g.attrs["featcache"]), [str(u) for u in g["utt_id"][:]]
    else:
        import h5py
        import hdf5plugin  # noqa: F401

        g = h5py.File(path, "r")
        attrs, ids = json.loads(g.attrs["featcache"]), list(g["utt_id"].asstr()[:])
    c = attrs["chunk_frames"]
    part, off, num = g["part"][:], g["offset"][:], g["num_frames"][:]
    out = {}
    for i, u in enumerate(ids):
        q = g[f"parts/{part[i]}/frames"][:]  # (F_k, L, D) int8
        scale = g[f"parts/{part[i]}/scale"][:]  # (ceil(F_k / C), L, D)
        assert q.dtype == np.int8 and scale.shape == (-(-len(q) // c), *q.shape[1:])
        f = np.arange(off[i], off[i] + num[i])
        out[u] = q[f] * scale[f // c]  # the contract's one-line formula
    pooled = g["pooled/mean"][:]
    return attrs, out, pooled


def _bound(x, c=1024):
    """Per-element bound max|x| / 254 over each chunk of c frames, layer, channel: (T, L, D)."""
    rows = np.arange(len(x)) // c
    top = np.stack([np.abs(x[rows == r]).max(axis=0) for r in range(rows[-1] + 1)])
    return top[rows] / 254


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """A tiny HuBERT checkpoint and 3 utterances (~1900 frames in one part: 2 chunks)."""
    import soundfile as sf

    from featcache.testing.models import save_tiny_checkpoint

    root = tmp_path_factory.mktemp("int8")
    folder = save_tiny_checkpoint(root / "tiny-hubert", "hubert", seed=3)
    rng = np.random.default_rng(0)
    records, wavs = [], {}
    for i, seconds in enumerate([13.0, 0.5, 25.0]):
        t = np.arange(int(SR * seconds)) / SR
        wav = 0.1 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.02 * rng.standard_normal(len(t))
        wavs[f"u{i}"] = wav.astype(np.float32)
        sf.write(root / f"u{i}.wav", wavs[f"u{i}"], SR, subtype="FLOAT")  # exact samples
        records.append({"id": f"u{i}", "audio": f"u{i}.wav"})
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root, folder, wavs


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_reader_gets_the_float32_forward_within_the_bound(tiny_corpus, tmp_path, fmt):
    from featcache.pipelines.extract import ExtractConfig, extract
    from featcache.testing.models import direct_forward, tiny_model

    root, folder, wavs = tiny_corpus
    cfg = ExtractConfig(root / "m.jsonl", [str(folder)], tmp_path, format=fmt, dtype="int8",
                        device="cpu", part_size=3, threads=1, progress=False)  # fmt: skip
    store = extract(cfg).stores[0].path
    attrs, plain, pooled = read_plain(store, fmt)
    assert attrs["dtype"] == "int8" and attrs["chunk_frames"] == 1024
    model = tiny_model("hubert", seed=3)
    ids = ["u0", "u1", "u2"]
    refs = [direct_forward(model, wavs[u]).transpose(1, 0, 2) for u in ids]  # (T, L, D) each
    # one part: chunks of 1024 frames run over the part's concatenated frames
    bounds = np.split(_bound(np.concatenate(refs)), np.cumsum([len(r) for r in refs])[:-1])
    for i, u in enumerate(ids):
        assert plain[u].shape == refs[i].shape and plain[u].dtype == np.float32
        err = np.abs(plain[u] - refs[i])
        assert (err <= 1.0001 * bounds[i] + 1e-5).all()
        assert err.max() > 0  # really quantised
        np.testing.assert_allclose(pooled[i], refs[i].mean(axis=0), rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(open_cache(store).get(u), plain[u])


def _manifest(n):
    return Manifest.from_records([{"id": f"utt{i:02d}", "audio": f"/a/{i}.wav"} for i in range(n)])


def _arrays(lengths, num_layers=3, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    return {
        f"utt{i:02d}": (rng.standard_normal((n, num_layers, dim)) * (1 + np.arange(dim))).astype(
            np.float32
        )
        for i, n in enumerate(lengths)
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_scales_do_not_depend_on_how_writes_were_split(tmp_path, fmt):
    # one part of 9,310 frames: the writer flushes it in blocks of whole chunks (4096 frames)
    lengths = [1, 1500, 3000, 2047, 1, 2761]
    arrays = _arrays(lengths)
    path = write_cache(tmp_path, "up", arrays, _manifest(6), format=fmt, dtype="int8", part_size=6)
    whole = np.concatenate(list(arrays.values()))  # (F, L, D)
    q, scale = quantize(whole, 1024)  # the whole part in one go
    if fmt == "zarr":
        import zarr

        g = zarr.open_group(str(path), mode="r")
    else:
        import h5py

        g = h5py.File(path, "r")
    np.testing.assert_array_equal(g["parts/0/frames"][:], q)
    np.testing.assert_array_equal(g["parts/0/scale"][:], scale)
    np.testing.assert_array_equal(scale[0], np.abs(whole[:1024]).max(axis=0) / np.float32(127))


@pytest.mark.parametrize("fmt", FORMATS)
def test_reader_layer_pooled_and_pickling(tmp_path, fmt):
    arrays = _arrays([1, 700, 1500, 2100, 30])
    arrays["utt02"][900:, 1, 5] = 0.0  # a silent channel stays exactly zero
    arrays["utt03"][1200, 2, 7] = 1e4  # an outlier costs nothing in other channels or chunks
    m = _manifest(5)
    path = write_cache(tmp_path, "up", arrays, m, format=fmt, dtype="int8", layers=[0, 4, 7])
    r = open_cache(path)
    assert r.quantized and "int8" in repr(r)
    got = {u: r.get(u) for u in r.utterances}
    for u, a in arrays.items():
        assert got[u].dtype == np.float32 and got[u].shape == a.shape
        np.testing.assert_array_equal(r.get(u, dtype=None), got[u])  # None: float32 too
        np.testing.assert_array_equal(r.get(u, layers=[7, 0]), got[u][:, [2, 0]])
    assert (got["utt02"][900:, 1, 5] == 0).all()
    other = np.ones(16, bool)
    other[7] = False
    small = np.abs(got["utt03"][:, 2, other] - arrays["utt03"][:, 2, other])
    assert small.max() <= np.abs(arrays["utt03"][:, 2, other]).max() / 254 * 1.0001
    np.testing.assert_allclose(got["utt03"][1200, 2, 7], 1e4, rtol=1e-6)
    for pos, layer in enumerate([0, 4, 7]):
        lazy = r.layer(layer)
        assert lazy.dtype == np.float32
        want = np.concatenate([got[u][:, pos] for u in r.utterances])
        np.testing.assert_array_equal(lazy.compute(), want)
    exact = np.stack([a.mean(axis=0, dtype=np.float64) for a in arrays.values()])
    np.testing.assert_allclose(r.pooled(), exact.astype(np.float32), rtol=1e-6)
    again = pickle.loads(pickle.dumps(r))
    np.testing.assert_array_equal(again.get("utt04"), got["utt04"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_float16_stores_are_unchanged(tmp_path, fmt):
    arrays = _arrays([700, 1500, 30])
    path = write_cache(tmp_path, "up", arrays, _manifest(3), format=fmt, dtype="float16")
    r = open_cache(path)
    for u, a in arrays.items():
        stored = r.get(u, dtype=None)
        assert stored.dtype == np.float16
        assert stored.tobytes() == a.astype(np.float16).tobytes()
    if fmt == "zarr":
        assert not list(path.glob("parts/*/scale"))
    else:
        import h5py

        with h5py.File(path, "r") as f:
            assert all("scale" not in f["parts"][k] for k in f["parts"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_info_shows_dtype_and_bytes_saved(tmp_path, fmt):
    arrays = _arrays([3000, 2500, 1000], num_layers=4, dim=64)
    m = _manifest(3)
    write_cache(tmp_path / "i8", "up", arrays, m, format=fmt, dtype="int8", compression="none")
    write_cache(tmp_path / "f16", "up", arrays, m, format=fmt, dtype="float16", compression="none")
    (i8,), (f16,) = describe_cache(tmp_path / "i8"), describe_cache(tmp_path / "f16")
    assert i8["dtype"] == "int8" and f16["dtype"] == "float16" and "int8_bytes" not in f16
    assert i8["float16_bytes"] == 2 * 6500 * 4 * 64
    assert i8["int8_bytes"] == 6500 * 4 * 64 + 4 * 7 * 4 * 64  # one part: 7 scale rows
    assert i8["bytes"] <= 0.55 * f16["bytes"]  # on disk, uncompressed
    text = format_table([i8])
    assert "int8" in text and "0.50x of float16" in text and "saved" in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_training_items_are_the_dequantised_float32_frames(tmp_path, fmt):
    import torch

    from featcache.train.data import CachedDataset, Collate, FrameBatchSampler

    arrays = _arrays([40, 1100, 25, 60])
    path = write_cache(tmp_path, "up", arrays, _manifest(4), format=fmt, dtype="int8")
    reader = open_cache(path)
    ids = reader.utterances
    data = CachedDataset([reader], ids, dict(zip(ids, reader.num_frames, strict=True)),
                         [0, 1, 0, 1], ["a", "b", "a", "b"])  # fmt: skip
    collate = Collate(lambda t: {"target": torch.tensor(t)})
    sampler = FrameBatchSampler(data.lengths, 5000)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=1)  # fmt: skip
    seen = 0
    for batch in loader:
        features = batch["features"][0]  # (L, B, T, D)
        assert features.dtype == torch.float32
        for b, utt in enumerate(batch["ids"]):
            want = torch.from_numpy(reader.get(utt)).permute(1, 0, 2)  # (L, T, D)
            assert torch.equal(features[:, b, : want.shape[1]], want)
            seen += 1
    assert seen == 4


def test_cli_extract_int8_then_info_train_probe(tmp_path):
    """A user's path: extract --dtype int8, info, train on frames (hconv), probe."""
    import soundfile as sf
    from click.testing import CliRunner

    from featcache.cli.main import cli

    records = []
    for i in range(16):
        pitch = 120 if i % 2 else 220
        t = np.arange(int(SR * (0.6 + 0.05 * i))) / SR
        wav = 0.2 * np.sin(2 * np.pi * pitch * t) + 0.01 * np.random.default_rng(i).random(len(t))
        sf.write(tmp_path / f"u{i}.wav", wav.astype(np.float32), SR)
        split = ("train", "train", "train", "train", "dev", "dev", "test", "test")[i % 8]
        records.append(
            {"id": f"u{i}", "audio": f"u{i}.wav", "speaker": f"s{i % 2}", "split": split}
        )
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    cache, runner = tmp_path / "cache", CliRunner()

    def invoke(*args):
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    invoke("extract", tmp_path / "m.jsonl", "-u", "fbank", "--cache", cache, "--dtype", "int8",
           "--no-progress")  # fmt: skip
    info = invoke("info", cache)
    assert "int8" in info and "0.50x of float16" in info and "saved" in info
    invoke("train", "--cache", cache, "--label", "speaker", "--interface", "hconv", "--epochs", 2,
           "--num-workers", 0, "--out", tmp_path / "run")  # fmt: skip
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["interface"] == "hconv" and set(summary["metrics"]) >= {"dev", "test"}
    out = invoke(
        "probe", "--cache", cache, "--label", "speaker", "--cv", 2, "--out", tmp_path / "p"
    )
    assert "fbank: layer 0" in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_crash_inside_a_part_then_resume_gives_the_clean_bytes(tmp_path, fmt):
    from concurrent.futures import ThreadPoolExecutor

    from featcache.store.builder import StoreBuilder, make_attrs, open_part

    m = _manifest(5)
    arrays = _arrays([700, 1500, 2100, 3000, 1024])
    attrs = make_attrs(
        provenance={"name": "up", "source": "featcache.testing.caches", "config_sha256": None},
        sample_rate=16000, frame_rate=50.0, model_num_layers=3, hidden_size=16,
        layers=[0, 1, 2], dtype="int8", manifest_sha256=m.sha256(), policy={},
    )  # fmt: skip
    path = tmp_path / f"up{'.zarr' if fmt == 'zarr' else '.h5'}"
    builder = StoreBuilder(path, fmt, attrs, m.ids(), part_size=2)

    def write_part(k, ex):
        part = open_part(path, fmt, k, attrs, ex)
        for u in builder.plan[k]:
            part.add(u, arrays[u].transpose(1, 0, 2))  # (L, T, D)
        part.close().result()

    with ThreadPoolExecutor(1) as ex:
        write_part(0, ex)
        # part 1 flushes 4,096 of its 5,100 frames, then the process "dies": never committed
        crashed = open_part(path, fmt, 1, attrs, ex)
        for u in builder.plan[1]:
            crashed.add(u, arrays[u].transpose(1, 0, 2))
        ex.submit(lambda: None).result()
        again = StoreBuilder(path, fmt, attrs, m.ids(), part_size=2)
        assert again.missing_parts() == [1, 2]
        for k in again.missing_parts():
            write_part(k, ex)
    again.finalize()
    clean = write_cache(tmp_path / "clean", "up", arrays, m, format=fmt, dtype="int8", part_size=2)
    a, b = read_plain(path, fmt), read_plain(clean, fmt)
    for u in m.ids():
        np.testing.assert_array_equal(a[1][u], b[1][u])
    np.testing.assert_array_equal(a[2], b[2])
