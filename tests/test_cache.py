"""featcache.Cache: one object owns a cache folder (its stores, readers and manifest copy)."""

from __future__ import annotations

import numpy as np
import pytest

import featcache
from featcache.errors import ConfigError, StoreError, StoreNotFoundError
from featcache.manifest import Manifest
from featcache.store import Cache, open_cache
from featcache.testing.caches import write_cache


def _manifest(n=3):
    return Manifest.from_records([{"id": f"u{i}", "audio": f"/a/{i}.wav"} for i in range(n)])


def _arrays(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return {f"u{i}": rng.standard_normal((5 + i, 2, 4)).astype(np.float32) for i in range(n)}


def test_featcache_exports_the_cache_class():
    assert featcache.Cache is Cache


def test_a_store_is_found_by_every_name_of_its_upstream(tmp_path):
    folder = tmp_path / "models" / "my-hubert"
    folder.mkdir(parents=True)
    # as `extract -u hubert-base` and `extract -u <folder>` record them
    write_cache(tmp_path / "c", "hubert-base", _arrays(), _manifest(),
                source="facebook/hubert-base-ls960")  # fmt: skip
    write_cache(tmp_path / "c", "my-hubert", _arrays(seed=1), _manifest(), source=str(folder))
    cache = Cache.open(tmp_path / "c")
    hub = cache.path / "hubert-base.zarr"
    assert cache.find("hubert-base") == hub
    assert cache.find("facebook/hubert-base-ls960") == hub  # the hub id it stands for
    assert cache.find(str(folder)) == cache.path / "my-hubert.zarr"  # the checkpoint folder
    assert cache.find("my-hubert") == cache.path / "my-hubert.zarr"  # the store name
    got = cache.reader("facebook/hubert-base-ls960").get("u1")
    np.testing.assert_array_equal(got, _arrays()["u1"])


def test_a_hub_id_store_is_found_by_its_registry_name(tmp_path):
    write_cache(tmp_path, "facebook/hubert-base-ls960", _arrays(), _manifest(),
                source="facebook/hubert-base-ls960")  # fmt: skip
    cache = Cache.open(tmp_path)
    assert list(cache.stores()) == ["facebook--hubert-base-ls960"]
    assert cache.find("hubert-base").name == "facebook--hubert-base-ls960.zarr"


def test_readers_of_every_store_and_of_named_ones(tmp_path):
    write_cache(tmp_path, "a", _arrays(), _manifest())
    write_cache(tmp_path, "b", _arrays(seed=2), _manifest(), format="hdf5")
    cache = Cache.open(tmp_path)
    assert list(cache.readers()) == ["a", "b"]
    assert list(cache.readers(["b", "a"])) == ["b", "a"]
    with pytest.raises(ConfigError, match="given twice"):
        cache.readers(["a", "a"])
    with pytest.raises(StoreError, match="choose one with -u"):
        cache.reader()
    assert cache.manifest().ids() == ["u0", "u1", "u2"]
    assert cache.manifest_sha256() == _manifest().sha256()


def test_open_refuses_a_missing_or_empty_folder(tmp_path):
    with pytest.raises(StoreNotFoundError, match="no cache folder"):
        Cache.open(tmp_path / "nope")
    with pytest.raises(StoreNotFoundError, match="holds no store"):
        Cache.open(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        Cache.create(tmp_path / "file")


def test_open_cache_is_the_one_store_shortcut(tmp_path):
    path = write_cache(tmp_path, "a", _arrays(), _manifest())
    for where in (path, tmp_path):
        reader = open_cache(where)
        np.testing.assert_array_equal(reader.get("u2"), _arrays()["u2"])


def test_a_changed_manifest_is_refused_and_added_utterances_accepted(tmp_path):
    write_cache(tmp_path, "a", _arrays(), _manifest())
    cache = Cache.open(tmp_path)
    cache.accept_manifest(_manifest(5))  # two added utterances: fine
    assert cache.manifest_sha256() == _manifest(5).sha256()
    with pytest.raises(StoreError, match="2 removed"):
        cache.accept_manifest(_manifest(3))
    with pytest.raises(StoreError, match="would leave stale"):
        cache.accept_manifest(_manifest(3), overwrite=True)
    cache.accept_manifest(_manifest(3), overwrite=True, rebuilding=["a"])
    assert cache.manifest().ids() == ["u0", "u1", "u2"]


def test_the_same_upstream_in_another_format_is_refused(tmp_path):
    write_cache(tmp_path, "a", _arrays(), _manifest())
    with pytest.raises(StoreError, match="another format"):
        write_cache(tmp_path, "a", _arrays(), _manifest(), format="hdf5")
