"""The layer store: one chunked Zarr v3 or HDF5 store per upstream in a cache folder.

Format contract: DESIGN.md, "The layer cache". Reading: :func:`open_cache`. Writing: the extract
pipeline drives :class:`~featcache.store.builder.StoreBuilder` and
:func:`~featcache.store.builder.open_part`; tests build stores with
:func:`featcache.testing.caches.write_cache`.
"""

from __future__ import annotations

from featcache.store.base import DTYPES, FORMATS, list_stores, parse_layers
from featcache.store.reader import CacheReader, open_cache

__all__ = ["DTYPES", "FORMATS", "CacheReader", "list_stores", "open_cache", "parse_layers"]
