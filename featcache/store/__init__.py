"""The layer store: one chunked Zarr v3 or HDF5 store per upstream in a cache folder.

Format contract: DESIGN.md, "The layer cache". A cache folder is a :class:`Cache`; one store is
read with :func:`open_cache` (:class:`CacheReader`). The registries of store formats, frame
dtypes and codecs below are the only place their names are written: ``featcache extract``'s
choices and help come from them. Adding a dtype is one ``DTYPES.register`` line here plus its
handling in the writer and the reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from featcache.errors import StoreError
from featcache.registry import Registry


@dataclass(frozen=True)
class StoreFormat:
    """What a format name stands for: the store's suffix and its backend class."""

    suffix: str
    backend: str  # "module:Class"


FORMATS = Registry("store format", "--format")
FORMATS.register(
    "zarr", "Zarr v3 folder <name>.zarr",
    StoreFormat(".zarr", "featcache.store.zarr:ZarrBackend"), default=True,
)  # fmt: skip
FORMATS.register(
    "hdf5", "one HDF5 file <name>.h5", StoreFormat(".h5", "featcache.store.hdf5:HDF5Backend")
)

DTYPES = Registry("frame dtype", "--dtype")
DTYPES.register("float16", "half the bytes", "float16", default=True)
DTYPES.register("float32", "exact; for hidden states beyond float16's range", "float32")
DTYPES.register(
    "int8",
    "0.5x the bytes of float16; scale per 1024 frames, layer and channel (featcache.store.int8)",
    "int8",
)

COMPRESSIONS = Registry("codec", "--compression")
COMPRESSIONS.register("lz4", "Blosc lz4 level 1: fast", "lz4", default=True)
COMPRESSIONS.register("zstd", "Blosc zstd level 1: ~10% smaller, 2-3x slower to read", "zstd")
COMPRESSIONS.register("none", "uncompressed: fastest reads", "none")


def suffix_of(format: str) -> str:
    """The store suffix of a format name (".zarr", ".h5")."""
    return FORMATS.get(format).value.suffix


def get_backend(format: str):
    """The backend registered under ``format``; a :class:`featcache.store.base.Backend`."""
    import importlib

    module, cls = FORMATS.get(format).value.backend.split(":")
    return getattr(importlib.import_module(module), cls)()


def format_of(path: Path) -> str:
    """The format of a store path, from its suffix."""
    for name in FORMATS:
        if _name(path).endswith(suffix_of(name)):
            return name
    suffixes = " or ".join(suffix_of(n) for n in FORMATS)
    raise StoreError(f"{path}: not a featcache store (expected a name ending in {suffixes})")


def store_name_of(path: Path) -> str | None:
    """The store name of a path (``<name>.zarr`` -> ``name``), or None if it is no store."""
    name = _name(path)
    if name.startswith("."):
        return None
    for fmt in FORMATS:
        if name.endswith(suffix_of(fmt)) and len(name) > len(suffix_of(fmt)):
            return name[: -len(suffix_of(fmt))]
    return None


def _name(path) -> str:
    """The last component of a local path or of a :class:`~featcache.store.location.RemoteDir`."""
    return path.name if hasattr(path, "name") else Path(path).name


_LAZY = {  # numpy and the backends load on first use, so the registries above stay light
    "Cache": "featcache.store.cache",
    "list_stores": "featcache.store.names",
    "open_cache": "featcache.store.cache",
    "CacheReader": "featcache.store.reader",
    "parse_layers": "featcache.store.layers",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'featcache.store' has no attribute {name!r}")


__all__ = [
    "COMPRESSIONS",
    "DTYPES",
    "FORMATS",
    "Cache",
    "CacheReader",
    "format_of",
    "get_backend",
    "list_stores",
    "open_cache",
    "parse_layers",
    "suffix_of",
]
