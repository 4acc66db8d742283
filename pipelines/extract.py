"""The extraction stage: run each upstream once over a manifest and cache every layer.

One store per upstream (``CACHE/<slug>.zarr`` or ``.h5``); what may happen to an existing cache
folder (resume, append, refuse, rebuild) is decided by :class:`featcache.store.Cache`, this stage
only orchestrates (dask, progress, timing). Utterances are grouped into parts by
manifest order alone (:mod:`featcache.store.builder`); each part is computed and written by one
process (this one, or one dask worker each with ``--workers``/``--scheduler``), and the index is
written last, so a crash at any moment costs only the parts in flight: rerunning the same command
finishes the job with the same arrays. Bad audio is recorded as a failed utterance with its reason
while everything else completes.

Companions: :mod:`~featcache.pipelines.extract_checks` (every check before writing),
:mod:`~featcache.pipelines.extract_parts` (one part: audio, forward, write) and
:mod:`~featcache.pipelines.extract_dask` (the cluster and its tasks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from featcache.pipelines.extract_checks import StoreJob, check_before_writing, check_extract
from featcache.pipelines.extract_dask import check_workers_see, run_dask, start_dask
from featcache.pipelines.extract_parts import (
    PartJob,
    compute_part,
    threads_per_process,
    writer_executor,
)
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

    Nothing on disk changes until :func:`~featcache.pipelines.extract_checks.check_extract`
    (names, options, manifest, cache folder) and
    :func:`~featcache.pipelines.extract_checks.check_before_writing` (each upstream loaded, each
    existing store) have passed and
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
        client, cluster = start_dask(config)
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


def resolve_paths(config: ExtractConfig) -> ExtractConfig:
    """The config with absolute cache and manifest paths (dask workers have other folders).

    A URL cache (``s3://...``) is the same for every machine and stays as given.
    """
    from dataclasses import replace

    cache = config.cache if is_url(config.cache) else Path(config.cache).expanduser().resolve()
    return replace(config, cache=cache,
                   manifest=Path(config.manifest).expanduser().resolve())  # fmt: skip


def _extract_one(config, cache: Cache, manifest, job: StoreJob, client) -> StoreSummary:
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
                threads_per_process(config),
            )
            for k in todo
        ]  # fmt: skip
        bar = _Progress(jobs, config.progress, name)
        if client is None:
            _run_local(upstream, jobs, bar)
        else:
            run_dask(client, jobs, bar)
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
