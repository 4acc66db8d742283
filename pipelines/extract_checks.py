"""The checks of the extraction stage, before anything is written.

:func:`check_extract` runs before torch is imported (names, options, manifest, every upstream's
config, the cache folder); :func:`check_before_writing` loads each upstream and compares its
store's attrs with an existing store. Only when both have passed does :func:`extract
<featcache.pipelines.extract.extract>` create or change anything on disk.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from featcache.errors import ConfigError
from featcache.pipelines.extract_dask import check_scheduler_address
from featcache.pipelines.extract_parts import threads_per_process
from featcache.store import COMPRESSIONS, DTYPES, FORMATS, Cache, get_backend
from featcache.store.location import is_url


@dataclass
class StoreJob:
    """One upstream, loaded and checked, and the attrs of its store."""

    name: str
    upstream: object
    attrs: dict
    load_seconds: float


@dataclass
class Ready:
    """What :func:`check_before_writing` found: the manifest and one job per upstream."""

    manifest: object
    jobs: list[StoreJob]


_LAYER_SYNTAX = re.compile(r"\s*-?\d+(\s*-\s*\d+)?(\s*,\s*-?\d+(\s*-\s*\d+)?)*\s*")


def check_extract(config):
    """Every check of an extraction, before anything is loaded, computed or written.

    Options, the manifest, the device, every ``-u`` (resolved and its config read, see
    :func:`featcache.upstreams.precheck.inspect_upstream`), ``--layers`` against each upstream's
    layer count, and the cache folder (:meth:`featcache.Cache.check_build`).

    Parameters
    ----------
    config : featcache.pipelines.extract.ExtractConfig

    Returns
    -------
    manifest, layers : (Manifest, dict of str to list of int)
        The manifest, and the layer indices to keep for each upstream name.
    """
    from featcache.manifest import Manifest
    from featcache.store import parse_layers
    from featcache.upstreams.device import resolve_autocast, resolve_device
    from featcache.upstreams.precheck import inspect_upstream
    from featcache.upstreams.registry import resolve

    check_options(config)
    if config.scheduler is not None:
        check_scheduler_address(config.scheduler)
    if config.layers and not _LAYER_SYNTAX.fullmatch(config.layers) and config.layers != "all":
        parse_layers(config.layers, 1)  # raises its "cannot parse" message
    for name in config.upstreams:
        resolve(name)  # names first: a typo fails before torch is even imported
    _check_store_names(config.upstreams)
    manifest = Manifest.load(config.manifest)
    resolve_device(config.device)
    resolve_autocast(config.autocast)
    layers = {}
    for name in config.upstreams:
        shape = inspect_upstream(name)
        layers[name] = parse_layers(config.layers, shape.num_layers, f"upstream {name!r}")
    Cache(config.cache, config.storage_options).check_build(
        manifest, config.upstreams, config.format, config.overwrite
    )
    return manifest, layers


def _check_store_names(upstreams) -> None:
    """Refuse two ``-u`` that are different upstreams but would share one store name."""
    from featcache.store.names import store_name

    by_name: dict[str, str] = {}
    for name in upstreams:
        slug = store_name(name)
        if slug in by_name and by_name[slug] != name:
            raise ConfigError(
                f"-u {by_name[slug]!r} and -u {name!r} would share the store name {slug!r}; "
                f"pass each upstream once, or copy one folder to another name"
            )
        by_name[slug] = name


def check_before_writing(config, cache: Cache, manifest, layers) -> Ready:
    """The checks that need each upstream loaded, reading only: its store's attrs against an
    existing store (:meth:`Cache.check_store`). Returns the loaded upstreams as jobs.
    """
    from featcache.store.builder import make_attrs
    from featcache.upstreams import load_upstream

    jobs = []
    for name in config.upstreams:
        started = time.perf_counter()
        # workers load their own copy; the driver only needs metadata then, so keep it off the GPU
        device = "cpu" if config.workers or config.scheduler else config.device
        upstream = load_upstream(name, device=device, autocast=config.autocast)
        attrs = make_attrs(
            provenance=upstream.provenance,
            sample_rate=upstream.sample_rate,
            frame_rate=upstream.frame_rate,
            model_num_layers=upstream.num_layers,
            hidden_size=upstream.hidden_size,
            layers=layers[name],
            dtype=config.dtype,
            manifest_sha256=manifest.sha256(),
            policy=upstream.policy,
            compression=config.compression,
        )
        attrs["torch_threads"] = threads_per_process(config)  # provenance of the forwards
        cache.check_store(name, config.format, attrs, config.overwrite)
        jobs.append(StoreJob(name, upstream, attrs, time.perf_counter() - started))
    return Ready(manifest, jobs)


def check_options(config) -> None:
    """The option values on their own: registry names, counts, and what excludes what."""
    for registry, value in ((FORMATS, config.format), (DTYPES, config.dtype),
                            (COMPRESSIONS, config.compression)):  # fmt: skip
        registry.get(value)
    if is_url(config.cache) and not str(config.cache).startswith("file://"):
        if get_backend(config.format).single_file:
            raise ConfigError(
                f"--format {config.format} with --cache {config.cache}: object storage has no "
                f"in-place file updates, which a one-file {config.format} store needs; use "
                f"--format {FORMATS.default} for a URL"
            )
    if config.workers is not None and config.scheduler is not None:
        raise ConfigError("--workers and --scheduler exclude each other; pass one of them")
    if config.workers is not None and config.workers < 1:
        raise ConfigError(f"--workers {config.workers}: must be at least 1")
    if config.threads is not None and config.threads < 1:
        raise ConfigError(f"--threads {config.threads}: must be at least 1")
    if config.batch_seconds <= 0 or config.part_size < 1:
        raise ConfigError("--batch-seconds must be > 0 and --part-size at least 1")
    if not config.upstreams:
        raise ConfigError("no upstream given; pass at least one -u NAME (e.g. -u fbank)")
