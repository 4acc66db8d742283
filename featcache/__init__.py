"""featcache: cache every hidden layer of speech foundation models, then fuse and analyse them.

Heavy libraries (torch, transformers, zarr, dask) are imported only by the functions that use
them, so importing featcache is instant.
"""

__version__ = "0.1.0"

__all__ = ["Cache", "__version__", "open_cache"]


def __getattr__(name):
    # featcache.Cache without importing the store package (and numpy) at ``import featcache``
    if name == "Cache":
        from featcache.store.cache import Cache

        return Cache
    raise AttributeError(f"module 'featcache' has no attribute {name!r}")


def open_cache(path, upstream=None):
    """Open one upstream's layer store for reading; see :func:`featcache.store.open_cache`."""
    from featcache.store import open_cache as _open_cache

    return _open_cache(path, upstream=upstream)
