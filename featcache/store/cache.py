"""A cache folder: the manifest copy, one store per upstream, and every decision about them.

:class:`Cache` is the one object that knows the folder's layout (DESIGN.md, "The layer cache"):
``CACHE/manifest.jsonl`` (the manifest the stores were built from) and ``CACHE/<store>.zarr`` or
``.h5``, one per upstream. It finds an upstream's store by any of its names, opens readers, and
decides what an extraction may do to an existing folder: resume an interrupted build, append
utterances added to the manifest, refuse a changed manifest or other options, or rebuild with
``overwrite``. Pipelines orchestrate; they ask the cache. Names are matched in
:mod:`~featcache.store.names`, manifests compared in :mod:`~featcache.store.manifest_copy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from featcache.errors import ConfigError, StoreError, StoreNotFoundError
from featcache.store import FORMATS, format_of, get_backend, store_name_of, suffix_of
from featcache.store.location import RemoteDir, as_location, is_remote, write_file
from featcache.store.manifest_copy import MANIFEST, audio_changes, copy_sha256, read_copy
from featcache.store.names import find_store, list_stores, store_name
from featcache.store.paths import has_work, remove_path, store_exists, work_dir
from featcache.store.reader import CacheReader

__all__ = ["Cache", "list_stores", "open_cache", "store_name"]


def open_cache(
    path, upstream: str | None = None, storage_options: dict | None = None
) -> CacheReader:
    """Open one upstream's store for reading: the one-store shortcut of :class:`Cache`.

    Parameters
    ----------
    path : str or Path
        A store (``.zarr`` folder or ``.h5`` file), or a cache folder; either may be an fsspec
        URL (``s3://bucket/cache``, see :mod:`featcache.store.location`).
    upstream : str, optional
        With a cache folder: the upstream as given to ``extract -u`` (registry name, hub id,
        folder) or its store name. Not needed when the folder holds one store.
    storage_options : dict, optional
        For a URL: file-system options (endpoint, credentials) beyond the environment's.

    Returns
    -------
    CacheReader
    """
    path = as_location(path, storage_options)
    if store_name_of(path) is not None and store_exists(path):
        return CacheReader(path)
    return Cache.open(path).reader(upstream)


class Cache:
    """One cache folder.

    Parameters
    ----------
    path : str, Path or RemoteDir
        The folder, or an fsspec URL (``s3://bucket/prefix``; Zarr stores only). Use
        :meth:`open` for one that must exist, :meth:`create` to make it.
    storage_options : dict, optional
        For a URL: file-system options (endpoint, credentials) beyond the environment's.

    Examples
    --------
    >>> cache = Cache.open("cache")                         # doctest: +SKIP
    >>> readers = cache.readers(["hubert-base", "fbank"])   # doctest: +SKIP
    >>> cache.manifest().ids()[:2]                          # doctest: +SKIP
    """

    def __init__(self, path, storage_options: dict | None = None):
        self.path = as_location(path, storage_options)

    def __repr__(self):
        return f"Cache({str(self.path)!r}, stores={list(self.stores())})"

    @classmethod
    def open(cls, path, storage_options: dict | None = None) -> Cache:
        """An existing cache folder holding at least one store."""
        cache = cls(path, storage_options)
        if not cache.path.is_dir():
            raise StoreNotFoundError(
                f"{cache.path}: no cache folder or store here; run `featcache extract`"
            )
        if not cache.stores():
            raise StoreNotFoundError(
                f"{cache.path}: cache folder holds no store; run `featcache extract`"
            )
        return cache

    @classmethod
    def create(cls, path, storage_options: dict | None = None) -> Cache:
        """A cache folder, made if it does not exist yet (a URL's bucket must exist)."""
        cache = cls(path, storage_options)
        if cache.path.exists() and not cache.path.is_dir():
            raise ConfigError(f"--cache {cache.path}: is a file; give a folder")
        cache.path.mkdir(parents=True, exist_ok=True)
        return cache

    # ---- the manifest copy

    @property
    def is_remote(self) -> bool:
        """True for a URL cache: no renames and no file locks there (parts use markers)."""
        return is_remote(self.path)

    @property
    def manifest_file(self) -> Path | RemoteDir:
        return self.path / MANIFEST

    def manifest(self):
        """The manifest the stores were built from (:class:`featcache.manifest.Manifest`)."""
        return read_copy(self.manifest_file)

    def manifest_sha256(self) -> str | None:
        """sha256 of the manifest copy's bytes (equal to ``Manifest.sha256()``), or None."""
        return copy_sha256(self.manifest_file)

    def accept_manifest(self, manifest, overwrite: bool = False, rebuilding=()) -> None:
        """Check ``manifest`` against the copy (:meth:`check_manifest`), then make it the copy."""
        self.check_manifest(manifest, overwrite, rebuilding)
        if self.manifest_sha256() != manifest.sha256():
            write_file(self.manifest_file, manifest.to_jsonl())

    def check_build(self, manifest, upstreams, format: str, overwrite: bool = False) -> None:
        """Every refusal :meth:`accept_manifest` and :meth:`builder` would give, writing nothing.

        ``extract`` calls it before it loads a model or creates the folder.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--cache {self.path}: is a file; give a folder")
        self.check_manifest(manifest, overwrite, upstreams)
        for upstream in upstreams:
            self._check_other_format(self.store_path(upstream, format))

    def check_manifest(self, manifest, overwrite: bool = False, rebuilding=()) -> None:
        """Refuse a manifest that drops utterances of the copy or changes their audio.

        Added utterances are fine (they become new parts of every store); so are changed
        labels, splits or order: fields other than
        :data:`~featcache.store.manifest_copy.AUDIO_FIELDS` do not change frames, so the stores
        are kept and their index follows the new order. A manifest that changes
        or drops utterances is refused, unless ``overwrite`` and every store of the folder is
        being rebuilt (``rebuilding``: upstream names): a store left behind would hold frames
        of audio the new manifest no longer describes. Reads only.
        """
        rebuilding = {store_name(u) for u in rebuilding}
        if not self.manifest_file.exists() or self.manifest_sha256() == manifest.sha256():
            return
        removed, changed = audio_changes(self.manifest(), manifest)
        if not (removed or changed):
            return
        if overwrite:
            stale = sorted(set(self.stores()) - rebuilding)
            if stale:
                raise StoreError(
                    f"{manifest.path}: changes utterances of cache {self.path}, whose store(s) "
                    f"{', '.join(stale)} --overwrite would leave stale; rebuild them too (add "
                    f"their -u) or remove them, or use a new --cache folder"
                )
            return
        what = []
        if changed:
            what.append(f"{len(changed)} changed, e.g. {changed[0]}")
        if removed:
            what.append(f"{len(removed)} removed, e.g. {removed[0]!r}")
        raise StoreError(
            f"{manifest.path}: differs from the manifest cache {self.path} was built from "
            f"({'; '.join(what)}); use --overwrite to rebuild the stores or a new --cache folder"
        )

    # ---- stores and readers

    def stores(self) -> dict[str, Path]:
        """Store name -> path of every store in the folder, sorted by name."""
        return list_stores(self.path)

    def store_path(self, upstream: str, format: str) -> Path | RemoteDir:
        """Where ``extract -u upstream --format format`` writes its store."""
        return self.path / f"{store_name(upstream)}{suffix_of(format)}"

    def find(self, upstream: str) -> Path:
        """The store of ``upstream``, named as ``extract -u`` was given it or by its store name.

        Any of an upstream's names finds its store: the registry name, the hub id it stands
        for, the checkpoint folder, or the store name (``facebook--hubert-base-ls960``).
        """
        stores = self.stores()
        found = find_store(stores, upstream)
        if found is not None:
            return found
        raise StoreNotFoundError(
            f"{self.path}: no store for upstream {upstream!r} (have: {', '.join(stores)}); "
            f"run `featcache extract ... -u {upstream}` first"
        )

    def is_built(self, upstream: str, manifest) -> bool:
        """True when ``upstream``'s store is complete for exactly ``manifest``.

        This is extract's "done" marker: the store's attrs say ``complete`` with the manifest's
        sha256 (written last, after the index), and its work folder is gone.
        """
        try:
            path = self.find(upstream)
        except StoreNotFoundError:
            return False
        attrs = get_backend(format_of(path)).read_attrs(path)
        return (
            bool(attrs.get("complete"))
            and attrs.get("manifest_sha256") == manifest.sha256()
            and not work_dir(path).exists()
        )

    def reader(self, upstream: str | None = None) -> CacheReader:
        """A reader of one store; ``upstream`` may be omitted when the folder holds one."""
        if upstream is not None:
            return CacheReader(self.find(upstream))
        stores = self.stores()
        if len(stores) == 1:
            return CacheReader(next(iter(stores.values())))
        raise StoreError(
            f"{self.path}: holds {len(stores)} stores ({', '.join(stores)}); choose one with -u NAME"
        )

    def readers(
        self, upstreams: Sequence[str] = (), chunk_cache: str | None = None
    ) -> dict[str, CacheReader]:
        """Store name -> reader for the named upstreams, or for every store when none is named.

        ``chunk_cache``: for a URL cache, a local folder keeping every chunk read (see
        :class:`CacheReader`).
        """
        paths = [self.find(u) for u in upstreams] if upstreams else list(self.stores().values())
        out: dict[str, CacheReader] = {}
        for path, given in zip(paths, upstreams or paths, strict=True):
            reader = CacheReader(path, chunk_cache=chunk_cache)
            if reader.name in out:
                raise ConfigError(f"upstream {given!r} given twice with -u (store {reader.name})")
            out[reader.name] = reader
        return out

    # ---- building

    def lock(self, command: str = "featcache"):
        """The folder's write lock (:class:`featcache.store.lock.CacheLock`); one writer at a time.

        A URL cache has no file lock (object stores offer none): there parts are objects that no
        two workers share and a part counts only once its marker exists, so a second writer
        recomputes work but never corrupts it. Its lock is :class:`~featcache.store.lock.NoLock`.
        """
        from featcache.store.lock import CacheLock, NoLock

        return NoLock() if self.is_remote else CacheLock(self.path, command)

    def check_store(self, upstream: str, format: str, attrs: dict, overwrite: bool = False) -> None:
        """Refuse, before anything is written, what :meth:`builder` would refuse (reads only)."""
        from featcache.store.builder import incompatibility

        path = self.store_path(upstream, format)
        self._check_other_format(path)
        if overwrite or not path.exists():
            return
        why = incompatibility(get_backend(format_of(path)).read_attrs(path), attrs)
        if why:
            raise StoreError(
                f"{path}: existing store {why}; use --overwrite to rebuild it or a new --cache "
                f"folder"
            )

    def builder(self, upstream: str, format: str, attrs: dict, ids: list[str], *,
                part_size: int, overwrite: bool = False):  # fmt: skip
        """The :class:`~featcache.store.builder.StoreBuilder` of ``upstream``'s store.

        Decides what happens to an existing store: an interrupted build of the same job
        resumes (even with ``overwrite``); a complete one takes the manifest's new utterances as
        new parts; one built with other options, or the upstream stored in another format, is
        refused unless ``overwrite`` rebuilds it.
        """
        from featcache.store.builder import StoreBuilder

        if self.is_remote and get_backend(format).single_file:
            raise ConfigError(
                f"--format {format} with cache {self.path}: an HDF5 store is one file that h5py "
                f"updates in place, which object storage cannot do; use --format zarr for a URL"
            )
        path = self.store_path(upstream, format)
        if overwrite:
            self._discard_unless_resumable(path, attrs)
        self._check_other_format(path)
        return StoreBuilder(path, format, attrs, ids, part_size)

    def summary(self, upstream: str) -> dict:
        """``num_utterances``, ``num_failed`` and ``errors`` of a complete store."""
        reader = CacheReader(self.find(upstream))
        try:
            return {"num_utterances": len(reader), "num_failed": len(reader.errors),
                    "errors": reader.errors}  # fmt: skip
        finally:
            reader.close()

    def _discard_unless_resumable(self, path: Path, attrs: dict) -> None:
        """``overwrite``: drop the store, unless it is an interrupted build of this very job."""
        from featcache.store.builder import incompatibility

        if store_exists(path) and has_work(path):
            old = get_backend(format_of(path)).read_attrs(path)
            same_manifest = old.get("manifest_sha256") == attrs["manifest_sha256"]
            if same_manifest and not old.get("complete") and incompatibility(old, attrs) is None:
                return
        remove_path(path)
        remove_path(work_dir(path))

    def _check_other_format(self, path: Path) -> None:
        name = store_name_of(path)
        for fmt in FORMATS:
            other = path.with_name(name + suffix_of(fmt))
            if other != path and store_exists(other):
                raise StoreError(
                    f"{other}: this cache already holds the upstream in another format; "
                    f"use the same --format, --overwrite after removing it, or a new --cache folder"
                )
