"""Store names: which store of a cache folder belongs to an upstream, by any of its names.

An upstream is extracted under its store name (:func:`store_name`, its slug); later stages may
name it as ``extract -u`` was given it (registry name, hub id, checkpoint folder) or by that
store name. This module is the one place those names are made and matched.
"""

from __future__ import annotations

from pathlib import Path

from featcache.errors import StoreError
from featcache.store import format_of, get_backend, store_name_of
from featcache.store.location import RemoteDir, as_location
from featcache.store.paths import store_exists


def store_name(upstream: str) -> str:
    """The store name an upstream name is extracted under (its slug; the one place it is made)."""
    from featcache.upstreams.registry import upstream_slug

    return upstream_slug(upstream)


def list_stores(cache_dir, storage_options: dict | None = None) -> dict[str, Path | RemoteDir]:
    """Stores in a cache folder or URL: store name -> path, sorted by name (empty if none)."""
    cache_dir = as_location(cache_dir, storage_options)
    if not cache_dir.is_dir():
        return {}
    found = ((store_name_of(p), p) for p in sorted(cache_dir.iterdir()))
    return {name: p for name, p in found if name is not None and store_exists(p)}


def find_store(stores: dict[str, Path], upstream: str) -> Path | None:
    """The store among ``stores`` (name -> path) that holds ``upstream``, or None.

    Any of an upstream's names finds its store: the registry name, the hub id it stands for,
    the checkpoint folder, or the store name (``facebook--hubert-base-ls960``); the last three
    through what each store's attrs record.
    """
    for key in (upstream, store_name(upstream)):
        if key in stores:
            return stores[key]
    wanted = names_of(upstream)
    for path in stores.values():
        if wanted & recorded_names(path):
            return path
    return None


def names_of(upstream: str) -> set[str]:
    """The names ``upstream`` goes by: as given, and the hub id or folder it resolves to."""
    from featcache.errors import UpstreamError
    from featcache.upstreams.registry import resolve

    names = {str(upstream).strip()}
    try:
        kind, target = resolve(upstream)
    except UpstreamError:
        return names
    if kind in ("hub", "folder"):
        names.add(target)
    return names


def recorded_names(path: Path) -> set[str]:
    """The upstream names a store's attrs record: as given to extract, and its source."""
    try:
        upstream = get_backend(format_of(path)).read_attrs(path).get("upstream", {})
    except StoreError:
        return set()
    return {str(v) for v in (upstream.get("name"), upstream.get("source")) if v}
