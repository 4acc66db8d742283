"""One conformance suite for every store backend (Zarr v3 and HDF5).

Stores are built by the real writer (featcache.testing.caches.write_cache, the code path of
extract) and read back both through featcache's reader and through plain zarr / h5py following
DESIGN.md's contract.
"""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from featcache import open_cache
from featcache.errors import ConfigError, StoreError, StoreNotFoundError
from featcache.manifest import Manifest
from featcache.store import list_stores, parse_layers
from featcache.store.builder import StoreBuilder, make_attrs, open_part
from featcache.store.paths import work_dir
from featcache.testing.caches import write_cache

FORMATS = ["zarr", "hdf5"]


def _manifest(n):
    return Manifest.from_records([{"id": f"utt{i:02d}", "audio": f"/a/{i}.wav"} for i in range(n)])


def _arrays(ids, num_layers=3, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    # lengths cross the 1024-frame chunk boundary and include a 1-frame utterance
    lengths = [1, 700, 1500, 2100, 30, 1024, 999][: len(ids)]
    return {
        u: rng.standard_normal((lengths[i % len(lengths)], num_layers, dim)).astype(np.float32)
        for i, u in enumerate(ids)
    }


def read_plain(path, fmt):
    """Read a store with plain zarr / h5py, from the contract alone."""
    if fmt == "zarr":
        import zarr

        g = zarr.open_group(str(path), mode="r")
        attrs = dict(g.attrs["featcache"])
        ids = [str(u) for u in g["utt_id"][:]]
        errs = dict(
            zip(map(str, g["errors/utt_id"][:]), map(str, g["errors/reason"][:]), strict=True)
        )
        part, off, nf = g["part"][:], g["offset"][:], g["num_frames"][:]
        frames = {
            u: g[f"parts/{part[i]}/frames"][off[i] : off[i] + nf[i]] for i, u in enumerate(ids)
        }
        return attrs, frames, g["pooled/mean"][:], errs
    import h5py
    import hdf5plugin  # noqa: F401

    with h5py.File(path, "r") as f:
        attrs = json.loads(f.attrs["featcache"])
        ids = list(f["utt_id"].asstr()[:])
        errs = dict(zip(f["errors/utt_id"].asstr()[:], f["errors/reason"].asstr()[:], strict=True))
        part, off, nf = f["part"][:], f["offset"][:], f["num_frames"][:]
        frames = {
            u: f[f"parts/{part[i]}/frames"][off[i] : off[i] + nf[i]] for i, u in enumerate(ids)
        }
        return attrs, frames, f["pooled/mean"][:], errs


@pytest.mark.parametrize("compression", ["lz4", "zstd", "none"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_reader_sees_the_contract(tmp_path, fmt, compression):
    m = _manifest(7)
    arrays = _arrays(m.ids()[:6])
    errors = {"utt06": "too short"}
    path = write_cache(
        tmp_path, "up", arrays, m, format=fmt, errors=errors, compression=compression
    )
    attrs, frames, pooled, errs = read_plain(path, fmt)
    assert list(frames) == m.ids()[:6]  # manifest order, failed one absent
    for u, a in arrays.items():
        assert frames[u].dtype == np.float32
        np.testing.assert_array_equal(frames[u], a)
    expected = np.stack([a.mean(axis=0) for a in arrays.values()])  # (N, L, D)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)
    assert errs == {"utt06": "too short"}
    assert attrs["complete"] and attrs["num_layers"] == 3 and attrs["hidden_size"] == 8
    assert attrs["compression"] == compression
    assert attrs["manifest_sha256"] == m.sha256()
    for key in ("format_version", "upstream", "sample_rate", "frame_rate", "layers", "dtype"):
        assert key in attrs
    assert (tmp_path / "manifest.jsonl").read_bytes() == m.to_jsonl()
    assert not work_dir(path).exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_reader_api(tmp_path, fmt):
    m = _manifest(6)
    arrays = _arrays(m.ids())
    write_cache(tmp_path, "up", arrays, m, format=fmt, dtype="float16", layers=[0, 4, 7])
    r = open_cache(tmp_path)
    assert r.format == fmt and r.name == "up" and r.utterances == m.ids()
    assert r.layers == [0, 4, 7] and r.num_layers == 3 and r.hidden_size == 8
    np.testing.assert_array_equal(r.num_frames, [len(a) for a in arrays.values()])
    for u, a in arrays.items():
        got = r.get(u)
        assert got.dtype == np.float32 and got.shape == a.shape
        np.testing.assert_array_equal(got, a.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(r.get("utt03", layers=[7, 0]), r.get("utt03")[:, [2, 0]])
    stored = r.get("utt03", dtype=None)  # as stored: float16, no cast
    assert stored.dtype == np.float16
    np.testing.assert_array_equal(stored, arrays["utt03"].astype(np.float16))
    assert r.get("utt03", layers=[7, 0], dtype=None).dtype == np.float16
    layer4 = pickle.loads(pickle.dumps(r)).layer(4)  # dask (sum T, D), reopened lazily
    assert layer4.shape == (sum(map(len, arrays.values())), 8)
    expected = np.concatenate([a[:, 1] for a in arrays.values()]).astype(np.float16)
    np.testing.assert_array_equal(layer4.compute(), expected.astype(np.float32))
    assert r.pooled().shape == (6, 3, 8)
    assert r.manifest().ids() == m.ids()
    with pytest.raises(StoreError, match="layer 5 is not in this store"):
        r.layer(5)
    with pytest.raises(StoreError, match="no frames"):
        r.get("nope")
    r.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_resume_recomputes_only_missing_parts(tmp_path, fmt):
    """A crash after some parts (and inside one) resumes to the same store as one clean run."""
    m = _manifest(7)
    arrays = _arrays(m.ids())
    attrs = _attrs(m)
    path = tmp_path / f"up{'.zarr' if fmt == 'zarr' else '.h5'}"
    builder = StoreBuilder(path, fmt, attrs, m.ids(), part_size=2)
    assert builder.missing_parts() == [0, 1, 2, 3]
    with ThreadPoolExecutor(1) as ex:
        _write_part(path, fmt, 0, builder.plan[0], arrays, attrs, ex)
        crashed = open_part(path, fmt, 1, attrs, ex)  # started, never committed
        crashed.add(builder.plan[1][0], arrays[builder.plan[1][0]].transpose(1, 0, 2))
        ex.submit(lambda: None).result()
        with pytest.raises(StoreError, match="incomplete"):
            open_cache(path)
        again = StoreBuilder(path, fmt, attrs, m.ids(), part_size=5)  # plan is kept
        assert again.plan == builder.plan and again.missing_parts() == [1, 2, 3]
        for k in again.missing_parts():
            _write_part(path, fmt, k, again.plan[k], arrays, attrs, ex)
    again.finalize()
    clean = write_cache(tmp_path / "clean", "up", arrays, m, format=fmt, part_size=2)
    a, b = read_plain(path, fmt), read_plain(clean, fmt)
    for u in m.ids():
        np.testing.assert_array_equal(a[1][u], b[1][u])
    np.testing.assert_array_equal(a[2], b[2])


@pytest.mark.parametrize("fmt", FORMATS)
def test_added_utterances_become_new_parts(tmp_path, fmt):
    small, big = _manifest(4), _manifest(6)
    arrays = _arrays(big.ids())
    path = write_cache(tmp_path, "up", {u: arrays[u] for u in small.ids()}, small, format=fmt,
                       part_size=2)  # fmt: skip
    before = open_cache(path).get("utt01")
    builder = StoreBuilder(path, fmt, _attrs(big), big.ids(), part_size=2)
    assert builder.missing_parts() == [2] and builder.plan[2] == ["utt04", "utt05"]
    if fmt == "zarr":  # its index is rewritten in place: readers must wait
        with pytest.raises(StoreError, match="incomplete"):
            open_cache(path)
    else:  # the file is replaced whole at the end: readers keep the old, consistent index
        assert open_cache(path).utterances == small.ids()
    with ThreadPoolExecutor(1) as ex:
        _write_part(path, fmt, 2, builder.plan[2], arrays, _attrs(big), ex)
    builder.finalize()
    r = open_cache(path)
    assert r.utterances == big.ids() and list(r._part) == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(r.get("utt01"), before)
    np.testing.assert_array_equal(r.get("utt05"), arrays["utt05"])
    with pytest.raises(StoreError, match="no longer has"):
        StoreBuilder(path, fmt, _attrs(small), small.ids()[1:], part_size=2)
    with pytest.raises(StoreError, match="dtype"):
        StoreBuilder(path, fmt, {**_attrs(big), "dtype": "float16"}, big.ids(), part_size=2)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_and_all_failed_parts(tmp_path, fmt):
    m = _manifest(5)
    arrays = _arrays(m.ids()[:2])
    errors = {u: "unreadable" for u in m.ids()[2:]}
    write_cache(tmp_path, "up", arrays, m, format=fmt, errors=errors, part_size=2)
    r = open_cache(tmp_path, "up")
    assert r.utterances == ["utt00", "utt01"] and r.errors == errors
    assert r.layer(0).compute().shape == (701, 8)


@pytest.mark.parametrize("fmt", FORMATS)
def test_values_beyond_float16_are_failures_not_infs(tmp_path, fmt):
    m = _manifest(3)
    arrays = _arrays(m.ids())
    arrays["utt01"][5, 2, 3] = 70000.0  # > float16 max
    arrays["utt02"][0, 0, 0] = np.nan
    write_cache(tmp_path, "up", arrays, m, format=fmt, dtype="float16")
    r = open_cache(tmp_path)
    assert r.utterances == ["utt00"]
    assert "beyond float16's range" in r.errors["utt01"] and "--dtype float32" in r.errors["utt01"]
    assert "NaN" in r.errors["utt02"]


def test_open_cache_errors(tmp_path):
    m = _manifest(2)
    with pytest.raises(StoreNotFoundError):
        open_cache(tmp_path / "missing")
    write_cache(tmp_path, "random-tiny-hubert", _arrays(m.ids()), m)
    write_cache(tmp_path, "fbank", _arrays(m.ids(), num_layers=1), m, format="hdf5")
    assert list(list_stores(tmp_path)) == ["fbank", "random-tiny-hubert"]
    with pytest.raises(StoreError, match="choose one with -u"):
        open_cache(tmp_path)
    assert open_cache(tmp_path, "random:tiny-hubert").name == "random-tiny-hubert"
    assert open_cache(tmp_path, "fbank").format == "hdf5"
    with pytest.raises(StoreNotFoundError, match="no store for upstream 'wavlm-base'"):
        open_cache(tmp_path, "wavlm-base")


def test_parse_layers():
    assert parse_layers(None, 13) == list(range(13))
    assert parse_layers("0,4,8-12", 13) == [0, 4, 8, 9, 10, 11, 12]
    assert parse_layers("-1,2", 13) == [2, 12]
    with pytest.raises(ConfigError, match="out of range"):
        parse_layers("3-14", 13)
    with pytest.raises(ConfigError, match="cannot parse"):
        parse_layers("a", 13)


def _attrs(m):
    return make_attrs(
        provenance={"name": "up", "source": "featcache.testing.caches", "config_sha256": None},
        sample_rate=16000,
        frame_rate=50.0,
        model_num_layers=3,
        hidden_size=8,
        layers=[0, 1, 2],
        dtype="float32",
        manifest_sha256=m.sha256(),
        policy={},
    )


def _write_part(path, fmt, k, ids, arrays, attrs, executor):
    part = open_part(path, fmt, k, attrs, executor)
    for u in ids:
        part.add(u, arrays[u].transpose(1, 0, 2))  # (L, T, D)
    part.close().result()
