"""Caches on object storage: a real S3 server (SeaweedFS on loopback) holds the cache.

Extraction into a bucket must give the arrays of extraction into a local folder; later stages
read the bucket with the endpoint taken from the environment, as a user would set it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from featcache.cli.main import main
from featcache.errors import ConfigError
from featcache.pipelines.extract import ExtractConfig, extract
from featcache.store import Cache, get_backend, open_cache
from featcache.store.location import as_location, parse_storage_options
from featcache.testing.corpus import make_noise_corpus

UPSTREAMS = ["fbank", "random:tiny-hubert"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    lengths = [0.3 + 0.05 * i for i in range(9)]
    return make_noise_corpus(tmp_path_factory.mktemp("corpus"), lengths, seed=0, speakers=2,
                             splits=("train", "train", "dev", "test"))  # fmt: skip


@pytest.fixture(scope="module")
def local(corpus, tmp_path_factory):
    """The reference: the same extraction into a local folder."""
    cache = tmp_path_factory.mktemp("local")
    extract(_config(corpus, cache))
    return cache


def _config(corpus, cache, **kw):
    return ExtractConfig(corpus, UPSTREAMS, cache, device="cpu", part_size=2, threads=1,
                         progress=False, **kw)  # fmt: skip


def read_plain(store, storage_options=None):
    """Every array of a store by plain zarr (contract paths), from a folder or a URL."""
    import zarr

    g = zarr.open_group(str(store), mode="r", storage_options=storage_options)
    ids = [str(u) for u in g["utt_id"][:]]
    part, off, n = g["part"][:], g["offset"][:], g["num_frames"][:]
    frames = {u: g[f"parts/{part[i]}/frames"][off[i] : off[i] + n[i]] for i, u in enumerate(ids)}
    return {"ids": ids, "part": part, "frames": frames, "pooled": g["pooled/mean"][:],
            "attrs": dict(g.attrs["featcache"])}  # fmt: skip


def assert_same_arrays(a, b):
    assert a["ids"] == b["ids"]
    np.testing.assert_array_equal(a["part"], b["part"])
    for u in a["ids"]:
        np.testing.assert_array_equal(a["frames"][u], b["frames"][u])
    np.testing.assert_array_equal(a["pooled"], b["pooled"])


def test_extract_into_bucket_equals_local_folder(corpus, local, s3):
    url = f"{s3.bucket}/cache"
    result = extract(_config(corpus, url))
    assert [s.num_utterances for s in result.stores] == [9, 9]
    opts = s3.storage_options  # plain zarr reads it too, given the endpoint
    for name in ("fbank", "random-tiny-hubert"):
        remote = read_plain(f"{url}/{name}.zarr", opts)
        assert_same_arrays(remote, read_plain(local / f"{name}.zarr"))
        assert remote["attrs"]["complete"] and remote["attrs"]["manifest_sha256"]
    # the manifest copy and every store's provenance live in the bucket, beside the stores
    fs = s3.filesystem()
    assert fs.cat(f"{url[5:]}/manifest.jsonl") == (local / "manifest.jsonl").read_bytes()
    assert not fs.exists(f"{url[5:]}/fbank.zarr.work/plan.json")  # the build finished
    cache = Cache.open(url)
    assert cache.manifest().ids() == [f"u{i}" for i in range(9)]
    assert open_cache(url, "fbank").get("u3").shape == open_cache(local, "fbank").get("u3").shape
    # a rerun finds the stores complete and rewrites nothing
    again = extract(_config(corpus, url))
    assert [s.parts_computed for s in again.stores] == [0, 0]


def test_killed_writer_half_part_is_rewritten(corpus, local, s3):
    """A build interrupted while part 1 was half written: no marker, so the rerun rewrites it."""
    from concurrent.futures import ThreadPoolExecutor

    from featcache.manifest import Manifest
    from featcache.store.builder import open_part

    url = f"{s3.bucket}/cache"
    manifest = Manifest.load(corpus)
    cache = Cache.create(url)
    cache.accept_manifest(manifest)
    attrs = {**get_backend("zarr").read_attrs(local / "fbank.zarr"), "complete": False}
    builder = cache.builder("fbank", "zarr", attrs, manifest.ids(), part_size=2)  # plan saved
    store = builder.path
    # what a writer killed mid-part leaves: four chunks of part 1's frames, no marker
    with ThreadPoolExecutor(1) as pool:
        writer = open_part(store, "zarr", 1, attrs, pool)
        writer.add("u2", np.full((attrs["num_layers"], 5000, attrs["hidden_size"]), 7.0, "f4"))
        writer._pending[-1].result()  # frames written; the part is never closed
    stale = f"{store.path}/parts/1/frames/c/3/0/0"
    assert store.fs.exists(stale)
    assert get_backend("zarr").complete_parts(store) == {}
    with pytest.raises(Exception, match="incomplete"):
        open_cache(url, "fbank")
    again = extract(ExtractConfig(corpus, ["fbank"], url, device="cpu", part_size=2, threads=1,
                                  progress=False)).stores[0]  # fmt: skip
    assert again.parts_computed == 5 and again.parts_reused == 0
    assert not store.fs.exists(stale)  # the half-written part was rewritten whole
    assert_same_arrays(read_plain(f"{url}/fbank.zarr", s3.storage_options),
                       read_plain(local / "fbank.zarr"))  # fmt: skip


def test_cli_info_train_probe_from_bucket(corpus, local, s3, tmp_path, capsys):
    """A new user: endpoint in the environment, the bucket URL wherever a folder goes."""
    url = f"{s3.bucket}/cache"
    main(["extract", str(corpus), "-u", "fbank", "--cache", url, "--part-size", "2",
          "--device", "cpu", "--no-progress"])  # fmt: skip
    assert "9 utterances cached" in capsys.readouterr().out
    main(["info", url])
    out = capsys.readouterr().out
    assert "fbank" in out and "complete" in out and url in out
    for args in (["--cache", url], ["--cache", str(local)]):
        where = "bucket" if url in args else "local"
        main(["train", *args, "-u", "fbank", "--label", "spk", "--epochs", "2", "--seed", "0",
              "--num-workers", "0", "--device", "cpu", "--out", str(tmp_path / where)])  # fmt: skip
        main(["probe", *args, "-u", "fbank", "--label", "spk", "--cv", "2",
              "--out", str(tmp_path / f"probe-{where}")])  # fmt: skip
    capsys.readouterr()
    bucket, folder = (json.loads((tmp_path / w / "summary.json").read_text())["metrics"]
                      for w in ("bucket", "local"))  # fmt: skip
    assert bucket == folder  # same arrays, same seed: the same model and scores
    probes = [json.loads((tmp_path / f"probe-{w}" / "probe.json").read_text())
              for w in ("bucket", "local")]  # fmt: skip
    assert probes[0]["results"] == probes[1]["results"]
    main(["report", "--cache", url, "--out", str(tmp_path / "report.html"),
          str(tmp_path / "bucket")])  # fmt: skip
    assert (tmp_path / "report.html").stat().st_size > 1000


def test_storage_option_reaches_the_endpoint_without_environment(corpus, s3, monkeypatch, capsys):
    url = f"{s3.bucket}/cache"
    extract(_config(corpus, url))
    for key in s3.env:
        monkeypatch.delenv(key)
    opts = [f"--storage-option={k}={v}" for k, v in s3.storage_options.items()]
    main(["info", url, *opts, "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["fbank", "random-tiny-hubert"]
    assert all(r["complete"] and r["utterances"] == 9 and r["bytes"] > 0 for r in rows)


def test_hdf5_with_url_is_a_one_line_error(corpus, s3, capsys):
    with pytest.raises(SystemExit) as e:
        main(["extract", str(corpus), "-u", "fbank", "--cache", f"{s3.bucket}/c",
              "--format", "hdf5", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert e.value.code == 1 and "\n" not in err
    assert "--format hdf5" in err and "--format zarr" in err
    with pytest.raises(ConfigError, match="HDF5"):
        Cache.create(f"{s3.bucket}/c").builder("fbank", "hdf5", {}, [], part_size=2)


def test_missing_bucket_is_a_clear_error(corpus, s3):
    from featcache.errors import StoreError

    with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist"):
        extract(_config(corpus, "s3://no-such-bucket/cache"))


def test_memory_and_file_urls(corpus, local, tmp_path):
    """memory:// (fsspec's in-process store) and file:// (a plain local folder) work too."""
    extract(ExtractConfig(corpus, ["fbank"], "memory://featcache-test/cache", device="cpu",
                          part_size=2, threads=1, progress=False))  # fmt: skip
    got = open_cache("memory://featcache-test/cache")
    want = open_cache(local, "fbank")
    for u in want.utterances:
        np.testing.assert_array_equal(got.get(u), want.get(u))
    assert as_location(f"file://{tmp_path}") == tmp_path


def test_parse_storage_options():
    got = parse_storage_options(["endpoint_url=http://h:1", "anon=true",
                                 "client_kwargs.region_name=eu", "config_kwargs={\"a\": 1}"])  # fmt: skip
    assert got == {"endpoint_url": "http://h:1", "anon": True,
                   "client_kwargs": {"region_name": "eu"}, "config_kwargs": {"a": 1}}  # fmt: skip
    with pytest.raises(ConfigError, match="key=value"):
        parse_storage_options(["endpoint_url"])


def test_chunk_cache_serves_the_second_read_locally(corpus, local, s3, tmp_path):
    """With a chunk cache, every frame chunk read once is kept on local disk: a second pass
    reads the same values even after the bucket's frame chunks are gone."""
    url = f"{s3.bucket}/cache"
    extract(_config(corpus, url))
    reader = Cache.open(url).readers(["fbank"], chunk_cache=str(tmp_path / "chunks"))["fbank"]
    want = open_cache(local, "fbank")
    first = {u: reader.get(u) for u in reader.utterances}
    cached = [p for p in (tmp_path / "chunks").rglob("*") if p.is_file()]
    assert len(cached) >= 5  # at least one chunk per part
    fs = s3.filesystem()
    for key in fs.find(f"{url[5:]}/fbank.zarr/parts"):
        if "/frames/c/" in key:
            fs.rm(key)
    with pytest.raises(Exception):  # noqa: B017 (any read error: the objects are gone)
        np.testing.assert_array_equal(open_cache(url, "fbank").get("u0"), want.get("u0"))
    import pickle

    again = pickle.loads(pickle.dumps(reader))  # as a DataLoader worker gets it
    for u in want.utterances:
        np.testing.assert_array_equal(again.get(u), want.get(u))
        np.testing.assert_array_equal(first[u], want.get(u))


def test_int8_store_in_bucket_equals_local(corpus, s3, tmp_path):
    """int8 parts (frames plus a scale array per part) are written by the marker protocol too."""
    import zarr

    url = f"{s3.bucket}/cache"
    for cache in (url, tmp_path):
        extract(ExtractConfig(corpus, ["fbank"], cache, dtype="int8", device="cpu", part_size=3,
                              threads=1, progress=False))  # fmt: skip
    remote = zarr.open_group(f"{url}/fbank.zarr", mode="r", storage_options=s3.storage_options)
    here = zarr.open_group(str(tmp_path / "fbank.zarr"), mode="r")
    for k in range(3):
        for name in ("frames", "scale", "pooled"):
            np.testing.assert_array_equal(
                remote[f"parts/{k}/{name}"][:], here[f"parts/{k}/{name}"][:]
            )
    np.testing.assert_array_equal(open_cache(url).get("u4"), open_cache(tmp_path).get("u4"))


def test_run_recipe_with_cache_in_bucket(corpus, s3, tmp_path, capsys):
    """`featcache run RECIPE --cache s3://...`: extraction and training use the bucket."""
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'name = "s3"\nout = "{tmp_path / "out"}"\nthreads = 1\n'
        f'[data]\nmanifest = "{corpus}"\n[extract]\nupstreams = ["fbank"]\n'
        '[train]\nlabel = "spk"\nepochs = 1\nnum_workers = 0\n'
        '[[train.runs]]\nname = "ws"\nupstreams = "each"\ninterface = "ws"\n'
        '[analyse]\nlabel = "spk"\nprobe = false\nsimilarity = false\nselect = false\nreport = false\n'
    )
    url = f"{s3.bucket}/cache"
    main(["run", str(recipe), "--cache", url])
    assert "fbank" in capsys.readouterr().out
    assert open_cache(url, "fbank").utterances == [f"u{i}" for i in range(9)]
    assert not (tmp_path / "out" / "cache").exists()
    assert (tmp_path / "out" / "runs" / "ws-fbank" / "summary.json").exists()


def test_bucket_parts_write_every_chunk_even_all_zero():
    """A part in a bucket writes chunks equal to the fill value too (zarr skips them by
    default), as local parts do: a chunk missing from a store is damage, never zeros."""
    import fsspec

    sink = get_backend("zarr").begin_part(
        as_location("memory://featcache-zero/z.zarr"), 0, (2, 4), "float16", "lz4"
    )
    sink.write(0, np.zeros((20, 2, 4), np.float16))  # (F, L, D): one chunk per layer, all zero
    found = fsspec.filesystem("memory").find("/featcache-zero/z.zarr/parts/0/frames")
    assert sorted(p.split("/frames/")[1] for p in found if "/c/" in p) == ["c/0/0/0", "c/0/1/0"]
