"""The extraction stage: run each upstream once over a manifest and cache every layer.

One store per upstream (``CACHE/<slug>.zarr`` or ``.h5``). Utterances are grouped into parts by
manifest order alone (:mod:`featcache.store.builder`); each part is computed and written by one
process (this one, or one dask worker each with ``--workers``/``--scheduler``), and the index is
written last, so a crash at any moment costs only the parts in flight: rerunning the same command
finishes the job with the same arrays. Bad audio is recorded as a failed utterance with its reason
while everything else completes.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from featcache.errors import ConfigError, StoreError
from featcache.pipelines.extract_parts import PartJob, compute_part, run_part, writer_executor
from featcache.store.base import (
    COMPRESSIONS,
    DTYPES,
    FORMATS,
    remove_path,
    store_path,
    work_dir,
)
from featcache.store.builder import DEFAULT_PART_SIZE

# manifest fields that decide an utterance's frames; any other field is a label
AUDIO_FIELDS = ("audio", "start", "duration", "channel")


@dataclass
class ExtractConfig:
    """Options of ``featcache extract`` (see ``featcache extract --help``)."""

    manifest: Path
    upstreams: list[str]
    cache: Path
    format: str = "zarr"
    dtype: str = "float16"
    compression: str = "lz4"
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

    Nothing on disk changes until :func:`check_before_writing` has passed every check and the
    dask scheduler (if any) answered; the cache folder is then locked (:mod:`featcache.store.lock`)
    for the whole run.

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
    from featcache.store.lock import CacheLock, command_line

    config = resolve_paths(config)
    cache = Path(config.cache)
    lock = CacheLock(cache, command_line())
    try:
        if cache.is_dir():
            lock.acquire()  # a second writer stops here, before loading any model
        ready = check_before_writing(config)
        client, cluster = _start_dask(config)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            lock.acquire()
            if client is not None:
                check_workers_see(client, cache)
            with disk_full_is_error(str(cache)):  # parts in flight are aborted, finished ones kept
                if not (cache / "manifest.jsonl").exists() or _read_sha(cache) != ready.sha256:
                    ready.manifest.write(cache / "manifest.jsonl")
                stores = [_extract_one(config, ready.manifest, job, client) for job in ready.jobs]
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
    """One upstream, loaded and checked: its store path and attrs."""

    name: str
    upstream: object
    path: Path
    attrs: dict
    load_seconds: float


@dataclass
class _Ready:
    """What :func:`check_before_writing` found: the manifest and one job per upstream."""

    manifest: object
    sha256: str
    jobs: list[_StoreJob]


def resolve_paths(config: ExtractConfig) -> ExtractConfig:
    """The config with absolute cache and manifest paths (dask workers have other folders)."""
    from dataclasses import replace

    return replace(config, cache=Path(config.cache).expanduser().resolve(),
                   manifest=Path(config.manifest).expanduser().resolve())  # fmt: skip


def check_before_writing(config: ExtractConfig) -> _Ready:
    """Every check of ``extract``, reading only: options, the manifest and how it changed
    against the cache's copy, the scheduler address, each upstream (loaded), its ``--layers``,
    and whether each existing store can take this run's parts.
    """
    from featcache.manifest import Manifest
    from featcache.store.base import parse_layers
    from featcache.store.builder import make_attrs
    from featcache.upstreams import load_upstream, upstream_slug

    _check_options(config)
    if config.scheduler is not None:
        check_scheduler_address(config.scheduler)
    manifest = Manifest.load(config.manifest)
    cache = Path(config.cache)
    slugs = {upstream_slug(name) for name in config.upstreams}
    check_manifest_change(cache, manifest, config.overwrite, slugs)
    jobs = []
    for name in config.upstreams:
        started = time.perf_counter()
        # workers load their own copy; the driver only needs metadata then, so keep it off the GPU
        device = "cpu" if config.workers or config.scheduler else config.device
        upstream = load_upstream(name, device=device, autocast=config.autocast)
        layers = parse_layers(config.layers, upstream.num_layers, f"upstream {name!r}")
        attrs = make_attrs(
            provenance=upstream.provenance,
            sample_rate=upstream.sample_rate,
            frame_rate=upstream.frame_rate,
            model_num_layers=upstream.num_layers,
            hidden_size=upstream.hidden_size,
            layers=layers,
            dtype=config.dtype,
            manifest_sha256=manifest.sha256(),
            policy=upstream.policy,
            compression=config.compression,
        )
        attrs["torch_threads"] = _threads_per_process(config)  # provenance of the forwards
        path = store_path(cache, upstream_slug(name), config.format)
        _check_other_format(path)
        if not config.overwrite:
            _check_store_compatible(path, attrs)
        jobs.append(_StoreJob(name, upstream, path, attrs, time.perf_counter() - started))
    return _Ready(manifest, manifest.sha256(), jobs)


def _check_store_compatible(path: Path, attrs: dict) -> None:
    from featcache.store.base import format_of, get_backend
    from featcache.store.builder import incompatibility

    if not path.exists():
        return
    why = incompatibility(get_backend(format_of(path)).read_attrs(path), attrs)
    if why:
        raise StoreError(
            f"{path}: existing store {why}; use --overwrite to rebuild it or a new --cache folder"
        )


def check_manifest_change(cache: Path, manifest, overwrite: bool, rebuilding: set[str]) -> None:
    """Refuse a manifest that changes the audio of, or drops, utterances of the cache's manifest.

    Added utterances are fine (they become new parts); so are changed labels, splits or order
    (fields other than :data:`AUDIO_FIELDS` do not change features: the stores are kept and
    their index follows the new order). ``overwrite`` accepts any change when
    every store in the cache is being rebuilt (``rebuilding``: store names); a store left
    behind would otherwise hold frames of audio the new manifest no longer describes.
    """
    from featcache.manifest import Manifest
    from featcache.store.base import list_stores

    old_file = cache / "manifest.jsonl"
    if not old_file.exists() or _read_sha(cache) == manifest.sha256():
        return
    old = Manifest.load(old_file)
    removed = [u.id for u in old if u.id not in manifest]
    changed = []
    for u in old:
        if u.id not in manifest:
            continue
        a, b = u.to_dict(), manifest[u.id].to_dict()
        keys = sorted(k for k in AUDIO_FIELDS if a.get(k) != b.get(k))
        if keys:
            changed.append(f"{u.id!r} (line {manifest[u.id].line}: {', '.join(keys)})")
    if (removed or changed) and overwrite:
        stale = sorted(set(list_stores(cache)) - rebuilding)
        if stale:
            raise StoreError(
                f"{manifest.path}: changes utterances of cache {cache}, whose store(s) "
                f"{', '.join(stale)} --overwrite would leave stale; rebuild them too (add their "
                f"-u) or remove them, or use a new --cache folder"
            )
        return
    if removed or changed:
        what = []
        if changed:
            what.append(f"{len(changed)} changed, e.g. {changed[0]}")
        if removed:
            what.append(f"{len(removed)} removed, e.g. {removed[0]!r}")
        raise StoreError(
            f"{manifest.path}: differs from the manifest cache {cache} was built from "
            f"({'; '.join(what)}); use --overwrite to rebuild the stores or a new --cache folder"
        )


def _extract_one(config, manifest, job: _StoreJob, client) -> StoreSummary:
    from featcache.store.builder import StoreBuilder

    started = time.perf_counter()
    name, upstream, path, attrs = job.name, job.upstream, job.path, job.attrs
    if config.overwrite:
        _discard_unless_resumable(path, attrs)
    builder = StoreBuilder(path, config.format, attrs, manifest.ids(), config.part_size)
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
        run = _run_local if client is None else _run_dask
        bar = _Progress(jobs, config.progress, name)
        run(upstream, jobs, client, bar)
        summary.audio_seconds, summary.forward_seconds = bar.seconds, bar.forward_seconds
        summary.parts_computed = len(todo)
        done = builder.finalize()
    elif builder.needs_reindex():  # same utterances and audio; new order or labels
        done = builder.reindex()
    else:
        done = _existing_summary(path, config.format)
    summary.num_utterances, summary.num_failed = done["num_utterances"], done["num_failed"]
    summary.errors = done["errors"]
    summary.wall_seconds = time.perf_counter() - started + job.load_seconds
    return summary


def _run_local(upstream, jobs, client, bar) -> None:
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


def _run_dask(upstream, jobs, client, bar) -> None:
    from distributed import as_completed

    run_id = uuid.uuid4().hex[:8]  # keys stay unique when several runs share a scheduler
    futures = [
        client.submit(run_part, job, key=f"featcache-{job.path.name}-part-{job.k}-{run_id}")
        for job in jobs
    ]
    try:
        for future in as_completed(futures):
            out = future.result()
            bar.update(out["utterances"], out["audio_seconds"], out["forward_seconds"])
    finally:
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
        dashboard_address=None,
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


def _discard_unless_resumable(path: Path, attrs: dict) -> None:
    """``--overwrite``: drop the store, unless it is an interrupted build of this very job."""
    from featcache.store.base import format_of, get_backend
    from featcache.store.builder import incompatibility

    if path.exists() and work_dir(path).exists():
        old = get_backend(format_of(path)).read_attrs(path)
        same_manifest = old.get("manifest_sha256") == attrs["manifest_sha256"]
        if same_manifest and not old.get("complete") and incompatibility(old, attrs) is None:
            return
    remove_path(path)
    remove_path(work_dir(path))


def _check_other_format(path: Path) -> None:
    for suffix in FORMATS.values():
        other = path.with_name(path.name[: -len(path.suffix)] + suffix)
        if other != path and other.exists():
            raise StoreError(
                f"{other}: this cache already holds the upstream in another format; "
                f"use the same --format, --overwrite after removing it, or a new --cache folder"
            )


def _existing_summary(path: Path, format: str) -> dict:
    from featcache.store.reader import CacheReader

    reader = CacheReader(path)
    out = {"num_utterances": len(reader), "num_failed": len(reader.errors), "errors": reader.errors}
    reader.close()
    return out


def _read_sha(cache: Path) -> str:
    import hashlib

    return hashlib.sha256((cache / "manifest.jsonl").read_bytes()).hexdigest()


def _check_options(config: ExtractConfig) -> None:
    if config.format not in FORMATS:
        raise ConfigError(f"--format {config.format!r}: use one of {', '.join(FORMATS)}")
    if config.dtype not in DTYPES:
        raise ConfigError(f"--dtype {config.dtype!r}: use one of {', '.join(DTYPES)}")
    if config.compression not in COMPRESSIONS:
        raise ConfigError(f"--compression {config.compression!r}: use one of {COMPRESSIONS}")
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
