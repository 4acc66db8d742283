"""The extraction stage: run each upstream once over a manifest and cache every layer.

One store per upstream (``CACHE/<slug>.zarr`` or ``.h5``); what may happen to an existing cache
folder (resume, append, refuse, rebuild) is decided by :class:`featcache.store.Cache`, this stage
only orchestrates (dask, progress, timing). Utterances are grouped into parts by
manifest order alone (:mod:`featcache.store.builder`); each part is computed and written by one
process (this one, or one dask worker each with ``--workers``/``--scheduler``), and the index is
written last, so a crash at any moment costs only the parts in flight: rerunning the same command
finishes the job with the same arrays. Bad audio is recorded as a failed utterance with its reason
while everything else completes.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from featcache.errors import ConfigError, StoreError
from featcache.pipelines.extract_parts import PartJob, compute_part, run_part, writer_executor
from featcache.store import COMPRESSIONS, DTYPES, FORMATS, Cache
from featcache.store.builder import DEFAULT_PART_SIZE
from featcache.store.location import is_url


@dataclass
class ExtractConfig:
    """Options of ``featcache extract`` (see ``featcache extract --help``)."""

    manifest: Path
    upstreams: list[str]
    cache: Path | str  # a folder, or an fsspec URL (s3://bucket/prefix): Zarr only
    format: str = FORMATS.default
    dtype: str = DTYPES.default
    compression: str = COMPRESSIONS.default
    layers: str | None = None
    device: str = "auto"
    autocast: str | None = None
    batch_seconds: float = 30.0
    workers: int | None = None
    scheduler: str | None = None
    overwrite: bool = False
    part_size: int = DEFAULT_PART_SIZE
    threads: int | None = None
    progress: bool = True
    storage_options: dict = field(default_factory=dict)  # for a URL cache, beyond the environment


@dataclass
class StoreSummary:
    """What one upstream's extraction did."""

    name: str
    path: Path
    num_utterances: int = 0
    num_failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    parts_computed: int = 0
    parts_reused: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    load_seconds: float = 0.0  # of wall_seconds, loading the upstream
    forward_seconds: float = 0.0  # summed time inside upstream.forward (all processes)


@dataclass
class ExtractResult:
    """Per-upstream summaries; ``failed`` is True if any utterance failed (exit code 3)."""

    stores: list[StoreSummary]

    @property
    def failed(self) -> bool:
        return any(s.num_failed for s in self.stores)


def extract(config: ExtractConfig) -> ExtractResult:
    """Run the extraction stage.

    Nothing on disk changes until :func:`check_extract` (names, options, manifest, cache folder)
    and :func:`check_before_writing` (each upstream loaded, each existing store) have passed and
    the dask scheduler (if any) answered; the cache folder is then locked
    (:mod:`featcache.store.lock`) for the whole run.

    Parameters
    ----------
    config : ExtractConfig

    Returns
    -------
    ExtractResult

    Raises
    ------
    StoreError
        The manifest differs from the one the cache was built from (other than by added
        utterances or changed labels), or an existing store was built with other options.
    LockedError
        Another process is writing the same cache folder.
    """
    from featcache.oserrors import disk_full_is_error
    from featcache.store.lock import command_line

    config = resolve_paths(config)
    manifest, layers = check_extract(config)  # before torch is imported
    cache = Cache(config.cache, config.storage_options)
    lock = cache.lock(command_line())  # a no-op lock for a URL cache (see Cache.lock)
    try:
        if cache.path.is_dir():
            lock.acquire()  # a second writer stops here, before loading any model
        ready = check_before_writing(config, cache, manifest, layers)
        client, cluster = _start_dask(config)
        try:
            cache = Cache.create(config.cache, config.storage_options)
            lock.acquire()
            if client is not None and not cache.is_remote:  # workers reach a bucket by its URL
                check_workers_see(client, cache.path)
            with disk_full_is_error(str(cache.path)):  # parts in flight are aborted, done ones kept
                cache.accept_manifest(ready.manifest, config.overwrite, config.upstreams)
                stores = [_extract_one(config, cache, ready.manifest, job, client)
                          for job in ready.jobs]  # fmt: skip
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
    finally:
        lock.release()
    return ExtractResult(stores)


@dataclass
class _StoreJob:
    """One upstream, loaded and checked, and the attrs of its store."""

    name: str
    upstream: object
    attrs: dict
    load_seconds: float


@dataclass
class _Ready:
    """What :func:`check_before_writing` found: the manifest and one job per upstream."""

    manifest: object
    jobs: list[_StoreJob]


def resolve_paths(config: ExtractConfig) -> ExtractConfig:
    """The config with absolute cache and manifest paths (dask workers have other folders).

    A URL cache (``s3://...``) is the same for every machine and stays as given.
    """
    from dataclasses import replace

    cache = config.cache if is_url(config.cache) else Path(config.cache).expanduser().resolve()
    return replace(config, cache=cache,
                   manifest=Path(config.manifest).expanduser().resolve())  # fmt: skip


_LAYER_SYNTAX = re.compile(r"\s*-?\d+(\s*-\s*\d+)?(\s*,\s*-?\d+(\s*-\s*\d+)?)*\s*")


def check_extract(config: ExtractConfig):
    """Every check of an extraction, before anything is loaded, computed or written.

    Options, the manifest, the device, every ``-u`` (resolved and its config read, see
    :func:`featcache.upstreams.precheck.inspect_upstream`), ``--layers`` against each upstream's
    layer count, and the cache folder (:meth:`featcache.Cache.check_build`).

    Returns
    -------
    manifest, layers : (Manifest, dict of str to list of int)
        The manifest, and the layer indices to keep for each upstream name.
    """
    from featcache.manifest import Manifest
    from featcache.store import parse_layers
    from featcache.store.cache import store_name
    from featcache.upstreams.device import resolve_autocast, resolve_device
    from featcache.upstreams.precheck import inspect_upstream
    from featcache.upstreams.registry import resolve

    _check_options(config)
    if config.scheduler is not None:
        check_scheduler_address(config.scheduler)
    if config.layers and not _LAYER_SYNTAX.fullmatch(config.layers) and config.layers != "all":
        parse_layers(config.layers, 1)  # raises its "cannot parse" message
    for name in config.upstreams:
        resolve(name)  # names first: a typo fails before torch is even imported
    by_name: dict[str, str] = {}
    for name in config.upstreams:
        slug = store_name(name)
        if slug in by_name and by_name[slug] != name:
            raise ConfigError(
                f"-u {by_name[slug]!r} and -u {name!r} would share the store name {slug!r}; "
                f"pass each upstream once, or copy one folder to another name"
            )
        by_name[slug] = name
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


def check_before_writing(config: ExtractConfig, cache: Cache, manifest, layers) -> _Ready:
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
        attrs["torch_threads"] = _threads_per_process(config)  # provenance of the forwards
        cache.check_store(name, config.format, attrs, config.overwrite)
        jobs.append(_StoreJob(name, upstream, attrs, time.perf_counter() - started))
    return _Ready(manifest, jobs)


def _extract_one(config, cache: Cache, manifest, job: _StoreJob, client) -> StoreSummary:
    started = time.perf_counter()
    name, upstream, attrs = job.name, job.upstream, job.attrs
    builder = cache.builder(name, config.format, attrs, manifest.ids(),
                            part_size=config.part_size, overwrite=config.overwrite)  # fmt: skip
    path = builder.path
    summary = StoreSummary(name=name, path=path, load_seconds=job.load_seconds)
    todo = builder.missing_parts()
    summary.parts_reused = len(builder.plan) - len(todo)
    if todo or not builder.is_complete():
        jobs = [
            PartJob(
                name, config.device, config.autocast, path, config.format, k,
                [manifest[u] for u in builder.plan[k]], attrs, config.batch_seconds,
                _threads_per_process(config),
            )
            for k in todo
        ]  # fmt: skip
        bar = _Progress(jobs, config.progress, name)
        if client is None:
            _run_local(upstream, jobs, bar)
        else:
            _run_dask(client, jobs, bar)
        summary.audio_seconds, summary.forward_seconds = bar.seconds, bar.forward_seconds
        summary.parts_computed = len(todo)
        done = builder.finalize()
    elif builder.needs_reindex():  # same utterances and audio; new order or labels
        done = builder.reindex()
    else:
        done = cache.summary(name)
    summary.num_utterances, summary.num_failed = done["num_utterances"], done["num_failed"]
    summary.errors = done["errors"]
    summary.wall_seconds = time.perf_counter() - started + job.load_seconds
    return summary


def _run_local(upstream, jobs, bar) -> None:
    import torch

    pending = None
    threads = torch.get_num_threads()
    if jobs and jobs[0].threads:
        torch.set_num_threads(jobs[0].threads)
    try:
        with writer_executor(upstream) as executor:
            for job in jobs:
                future = compute_part(upstream, job, executor, bar.update)
                if pending is not None:
                    pending.result()  # at most one part being written while the next computes
                pending = future
            if pending is not None:
                pending.result()
    finally:
        torch.set_num_threads(threads)
        bar.close()


def _run_dask(client, jobs, bar) -> None:
    from distributed import KilledWorker, as_completed

    run_id = uuid.uuid4().hex[:8]  # keys stay unique when several runs share a scheduler
    futures = [
        client.submit(run_part, job, key=f"featcache-{job.path.name}-part-{job.k}-{run_id}")
        for job in jobs
    ]
    lost = []
    try:
        for future in as_completed(futures):
            if future.status == "error" and isinstance(future.exception(), KilledWorker):
                lost.append(future.key)  # other parts go on: no task of this run outlives it
                continue
            out = future.result()
            # forget the result at once: were its worker lost later, dask would recompute the
            # part and rewrite it while a rerun may write it too
            future.release()
            bar.update(out["utterances"], out["audio_seconds"], out["forward_seconds"])
    finally:
        bar.close()
    if lost:
        raise StoreError(
            f"{jobs[0].path}: {len(lost)} part(s) lost with a dask worker that died (e.g. "
            f"{lost[0]}); every other part is complete and kept: rerun the same command to "
            f"compute the rest"
        )


class _Progress:
    """tqdm bar over utterances with audio hours and real-time factor."""

    def __init__(self, jobs, enabled, name):
        from tqdm import tqdm

        total = sum(len(j.utterances) for j in jobs)
        self.bar = tqdm(total=total, unit="utt", desc=name, disable=not enabled, leave=True)
        self.seconds = 0.0
        self.forward_seconds = 0.0
        self.started = time.perf_counter()

    def update(self, n: int, seconds: float, forward_seconds: float = 0.0) -> None:
        self.seconds += seconds
        self.forward_seconds += forward_seconds
        wall = time.perf_counter() - self.started
        rtf = wall / self.seconds if self.seconds else float("nan")
        self.bar.set_postfix_str(f"{self.seconds / 3600:.3f} h audio, RTF {rtf:.3f}", refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


SCHEDULER_TIMEOUT = "10s"  # to connect to --scheduler; an absent scheduler fails this fast


def check_scheduler_address(address: str) -> None:
    """Refuse a ``--scheduler`` that is not a dask scheduler address (``tcp://host:port``)."""
    import re

    if re.match(r"^https?://", address):
        raise ConfigError(
            f"--scheduler {address}: that is a web (dashboard) address; give the scheduler's "
            f"own address, e.g. tcp://host:8786 (printed when the scheduler starts)"
        )
    proto, _, rest = address.rpartition("://")
    if proto not in ("", "tcp", "tls", "ucx", "inproc", "ws", "wss") or not re.fullmatch(
        r"\[?[A-Za-z0-9_.:-]+\]?(:\d+)?(/.*)?", rest
    ):
        raise ConfigError(
            f"--scheduler {address!r}: not a dask scheduler address; use tcp://host:port "
            f"(e.g. tcp://10.0.0.5:8786)"
        )


def _start_dask(config):
    if config.scheduler is None and not config.workers:
        return None, None
    from distributed import Client, LocalCluster

    if config.scheduler is not None:
        try:
            return Client(config.scheduler, timeout=SCHEDULER_TIMEOUT), None
        except Exception as e:  # refused, timed out, or something else answered (any error)
            raise ConfigError(
                f"--scheduler {config.scheduler}: no dask scheduler answered within "
                f"{SCHEDULER_TIMEOUT} ({type(e).__name__}); check the address and that the "
                f"scheduler is running (nothing was written)"
            ) from None
    cluster = LocalCluster(
        n_workers=config.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: 8787 may be taken (another cluster)
    )
    return Client(cluster), cluster


def check_workers_see(client, cache: Path) -> None:
    """Refuse a cache folder that some dask worker cannot see (it would write elsewhere or fail)."""
    blind = sorted(w for w, seen in client.run(os.path.isdir, str(cache)).items() if not seen)
    if blind:
        raise ConfigError(
            f"--cache {cache}: dask worker(s) {', '.join(blind[:3])} cannot see this folder; "
            f"put the cache on storage every worker mounts at the same path"
        )


def _threads_per_process(config: ExtractConfig) -> int:
    """Torch threads of every forward, in this process and in every dask worker alike.

    ``--threads``, else the driver's own torch thread count (all cores unless pinned). Thread
    counts change float32 results in the last bits, so one count for all processes is what
    makes the arrays byte-identical whatever the worker count; it is recorded in the store's
    attrs (``torch_threads``). On CPU, N local workers then share the cores N-fold: pass
    ``--threads`` (e.g. cores / N) to avoid that, for the same bits at any worker count.
    """
    if config.threads:
        return config.threads
    import torch

    return torch.get_num_threads()


def _check_options(config: ExtractConfig) -> None:
    for registry, value in ((FORMATS, config.format), (DTYPES, config.dtype),
                            (COMPRESSIONS, config.compression)):  # fmt: skip
        registry.get(value)
    if is_url(config.cache) and not str(config.cache).startswith("file://"):
        if config.format != "zarr":
            raise ConfigError(
                f"--format {config.format} with --cache {config.cache}: object storage has no "
                f"in-place file updates, which an HDF5 file needs; use --format zarr for a URL"
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
