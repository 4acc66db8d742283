"""The dask side of the extraction stage: start or join a cluster, check it, run parts on it.

``--workers N`` starts a local cluster of N single-threaded worker processes; ``--scheduler
ADDRESS`` joins a running one (e.g. dask-jobqueue on SLURM). Each part is one task, written by
the worker that computes it (:func:`featcache.pipelines.extract_parts.run_part`); the driver
writes the index afterwards.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from featcache.errors import ConfigError, StoreError
from featcache.pipelines.extract_parts import run_part

SCHEDULER_TIMEOUT = "10s"  # to connect to --scheduler; an absent scheduler fails this fast


def check_scheduler_address(address: str) -> None:
    """Refuse a ``--scheduler`` that is not a dask scheduler address (``tcp://host:port``)."""
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


def start_dask(config):
    """``(client, cluster)`` for ``--scheduler`` / ``--workers``; ``(None, None)`` for neither.

    ``cluster`` is None when joining a scheduler (it is not ours to close).
    """
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


def run_dask(client, jobs, bar) -> None:
    """Run every :class:`~featcache.pipelines.extract_parts.PartJob` as one dask task.

    A part lost with a dying worker does not stop the others; the error afterwards says to
    rerun, which computes only the missing parts.
    """
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
