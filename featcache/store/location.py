"""Where a cache lives: a local folder (:class:`pathlib.Path`) or an fsspec URL (:class:`RemoteDir`).

A cache may be a folder or a URL (``s3://bucket/prefix``, ``gs://``, ``az://``, ``memory://``);
``file://`` URLs are plain local folders. :class:`RemoteDir` offers the few ``pathlib`` calls the
store code makes (``/``, ``name``, ``exists``, ``iterdir``, ``read_bytes`` ...) over an fsspec file
system, so :class:`featcache.store.Cache` and the Zarr backend read the same either way; what
differs on object storage (no rename, no lock) is decided where it matters, by
:func:`is_remote`.

Credentials and endpoints come from where the file system's library looks (for S3: the
environment's ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``..., ``~/.aws``) plus explicit
``storage_options`` (``--storage-option key=value`` on the command line).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from featcache.errors import ConfigError, StoreError


def is_url(path) -> bool:
    """True for ``scheme://...`` strings and :class:`RemoteDir` (``file://`` included)."""
    return isinstance(path, RemoteDir) or (isinstance(path, str) and "://" in path)


def is_remote(path) -> bool:
    """True when ``path`` is a location on an fsspec file system (not a local folder)."""
    return isinstance(path, RemoteDir)


def as_location(path, storage_options: dict | None = None) -> Path | RemoteDir:
    """A local :class:`Path` for folders and ``file://`` URLs, a :class:`RemoteDir` for URLs."""
    if isinstance(path, RemoteDir):
        return path if not storage_options else RemoteDir(path.url, storage_options)
    if isinstance(path, str) and "://" in path:
        if path.startswith("file://"):
            return Path(path[len("file://") :])
        return RemoteDir(path, storage_options)
    if storage_options:
        raise ConfigError(f"--storage-option applies to URL caches only, not folder {path}")
    return Path(path)


def parse_storage_options(items) -> dict:
    """``["key=value", "client_kwargs.region_name=x"]`` -> a storage_options dict.

    Values are JSON where they parse as JSON (numbers, true/false, objects), else strings;
    dotted keys nest (``client_kwargs.endpoint_url=...``).
    """
    out: dict = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--storage-option {item!r}: use key=value, e.g. endpoint_url=URL")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        *outer, last = key.strip().split(".")
        node = out
        for k in outer:
            node = node.setdefault(k, {})
        node[last] = value
    return out


class RemoteDir:
    """A folder-like prefix on an fsspec file system, with the pathlib calls the store code uses.

    Parameters
    ----------
    url : str
        ``protocol://path`` (e.g. ``s3://bucket/cache``).
    storage_options : dict, optional
        Passed to the file system (endpoint, credentials, ...); the environment's defaults
        apply otherwise. Listings are never cached: other processes write the same prefix.
    """

    def __init__(self, url: str, storage_options: dict | None = None):
        from fsspec.core import url_to_fs

        self.storage_options = dict(storage_options or {})
        self._pid = os.getpid()
        try:
            self._fs, path = url_to_fs(url, use_listings_cache=False, **self.storage_options)
        except (ImportError, ValueError) as e:
            scheme = url.split("://", 1)[0]
            extra = " (pip install 'featcache[s3]')" if scheme in ("s3", "s3a") else ""
            raise ConfigError(f"cache {url}: cannot open {scheme}:// ({e}){extra}") from None
        self.path = path.rstrip("/")
        self.url = self.fs.unstrip_protocol(self.path)

    @classmethod
    def _child(cls, parent: RemoteDir, path: str) -> RemoteDir:
        child = cls.__new__(cls)
        child.storage_options, child._fs, child._pid = (
            parent.storage_options,
            parent.fs,
            parent._pid,
        )
        child.path, child.url = path, parent.fs.unstrip_protocol(path)
        return child

    @property
    def fs(self):
        """The fsspec file system; made afresh in a forked child (async clients are not
        fork-safe: DataLoader workers inherit readers by fork)."""
        if self._pid != os.getpid():
            from fsspec.core import url_to_fs

            self._fs = url_to_fs(self.url, use_listings_cache=False, **self.storage_options)[0]
            self._pid = os.getpid()
        return self._fs

    def __reduce__(self):  # pickled to dask workers by URL and options
        return (RemoteDir, (self.url, self.storage_options))

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RemoteDir({self.url!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RemoteDir) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __lt__(self, other: RemoteDir) -> bool:
        return self.url < other.url

    def __truediv__(self, name: str) -> RemoteDir:
        return RemoteDir._child(self, f"{self.path}/{name}")

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> RemoteDir:
        return RemoteDir._child(self, self.path.rsplit("/", 1)[0])

    def with_name(self, name: str) -> RemoteDir:
        return self.parent / name

    # ---- queries

    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def is_dir(self) -> bool:
        return self.fs.isdir(self.path)

    def is_file(self) -> bool:
        return self.fs.isfile(self.path)

    def iterdir(self):
        """Children (files and prefixes), sorted by name."""
        if not self.fs.isdir(self.path):
            return iter(())
        names = {p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.path, detail=False)}
        names.discard(self.name)
        return iter([self / n for n in sorted(names)])

    def du(self) -> int:
        """Bytes of every object under this prefix."""
        return int(self.fs.du(self.path)) if self.fs.exists(self.path) else 0

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def read_many(self, names: list[str]) -> dict[str, bytes]:
        """Objects ``self / name`` for each name that exists, fetched concurrently."""
        paths = {f"{self.path}/{n}": n for n in names}
        got = self.fs.cat(list(paths), on_error="omit") if paths else {}
        return {paths[self.fs._strip_protocol(k)]: v for k, v in got.items()}

    # ---- changes

    def write_bytes(self, data: bytes) -> None:
        """One PUT: object stores make a single object visible whole or not at all."""
        self.fs.pipe_file(self.path, data)

    def mkdir(self, parents: bool = True, exist_ok: bool = True) -> None:
        """Folders are implied by keys; only check that the bucket (container) exists."""
        bucket = self.path.split("/", 1)[0]
        if self.fs.protocol[0] in ("memory", "file", "local") or "/" not in self.path:
            return
        if not self.fs.exists(bucket):
            raise StoreError(
                f"cache {self.url}: bucket {bucket!r} does not exist or is not reachable with "
                f"these credentials; create it first (e.g. `aws s3 mb s3://{bucket}`)"
            )

    def rmtree(self) -> None:
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)

    # ---- zarr

    def zarr_store(self, read_only: bool = False, chunk_cache: str | None = None):
        """A zarr ``FsspecStore`` rooted here; ``chunk_cache`` adds a local read-through cache."""
        from zarr.storage import FsspecStore

        if chunk_cache is None:
            return FsspecStore.from_url(self.url, self.storage_options, read_only=read_only)
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
        from fsspec.implementations.cached import SimpleCacheFileSystem

        # whole objects (chunks) are fetched once into the folder, then read from there
        cached = SimpleCacheFileSystem(fs=self.fs, cache_storage=chunk_cache, same_names=False)
        wrapped = AsyncFileSystemWrapper(cached, asynchronous=True)
        return FsspecStore(wrapped, path=self.path, read_only=True)


def write_file(path, data: bytes | str) -> None:
    """Write a whole file: atomically by rename locally, by one PUT on object storage."""
    from featcache.atomic import write_atomic

    if isinstance(path, RemoteDir):
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    else:
        write_atomic(path, data)
