"""One part of the extraction stage: load audio, run the upstream, write the part.

Runs in the driver process, or in a dask worker (:func:`run_part`), which loads each upstream
once and keeps it for the following parts.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from featcache.errors import AudioError

_LOADED: dict[tuple, object] = {}  # (name, device, autocast) -> Upstream, one per worker process


@dataclass
class PartJob:
    """Everything a worker needs to compute and write one part (picklable)."""

    upstream: str
    device: str
    autocast: str | None
    path: Path
    format: str
    k: int
    utterances: list  # featcache.manifest.Utterance
    attrs: dict
    batch_seconds: float
    threads: int | None = None


def threads_per_process(config) -> int:
    """Torch threads of every forward, in this process and in every dask worker alike.

    ``--threads`` (``config.threads``), else the driver's own torch thread count (all cores
    unless pinned). Thread counts change float32 results in the last bits, so one count for all
    processes is what makes the arrays byte-identical whatever the worker count; it is recorded
    in the store's attrs (``torch_threads``). On CPU, N local workers then share the cores
    N-fold: pass ``--threads`` (e.g. cores / N) to avoid that, for the same bits at any worker
    count.
    """
    if config.threads:
        return config.threads
    import torch

    return torch.get_num_threads()


def compute_part(upstream, job: PartJob, executor: ThreadPoolExecutor, on_batch=None):
    """Compute one part's utterances with ``upstream`` and write them; returns a commit future.

    Unreadable or too-short audio and failing forwards are recorded as failed utterances.
    ``on_batch(num_utterances, audio_seconds, forward_seconds)`` is called after each forward.
    """
    from featcache.audio import load_utterance
    from featcache.store.builder import open_part

    writer = open_part(job.path, job.format, job.k, job.attrs, executor)
    limit = job.batch_seconds * upstream.sample_rate
    batch: list[tuple[str, object]] = []
    for utt in job.utterances:
        try:
            wav = load_utterance(utt, sample_rate=upstream.sample_rate)
            upstream.check_length(len(wav), where=f"utterance {utt.id!r}")
        except AudioError as e:
            writer.fail(utt.id, _reason(e, utt.id))
            if on_batch is not None:
                on_batch(1, 0.0, 0.0)
            continue
        batch.append((utt.id, wav))
        if sum(len(w) for _, w in batch) >= limit:
            _run_batch(upstream, batch, writer, on_batch)
            batch = []
    _run_batch(upstream, batch, writer, on_batch)
    return writer.close()


def _reason(error: Exception, utt_id: str) -> str:
    """The error message without the leading ``utterance 'id': `` (the id is stored beside it)."""
    text = str(error)
    prefix = f"utterance {utt_id!r}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def run_part(job: PartJob) -> dict:
    """Dask task: compute and write one part in this worker process."""
    key = (job.upstream, _worker_device(job.device), job.autocast)
    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    if key not in _LOADED:
        from featcache.upstreams import load_upstream

        _LOADED[key] = load_upstream(job.upstream, device=key[1], autocast=job.autocast)
    seconds, forward = [], []
    with writer_executor(_LOADED[key]) as executor:
        record = lambda n, s, f: (seconds.append(s), forward.append(f))  # noqa: E731
        compute_part(_LOADED[key], job, executor, record).result()
    return {
        "k": job.k,
        "utterances": len(job.utterances),
        "audio_seconds": sum(seconds),
        "forward_seconds": sum(forward),
    }


class InlineExecutor:
    """An executor that runs each task at once in the calling thread."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, fn, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:  # delivered through the future, like a thread pool
            future.set_exception(e)
        return future


def writer_executor(upstream):
    """Where parts are written: a thread overlapping the GPU's work, or inline on CPU.

    On a CPU run torch's threads already use every core; a concurrent writer thread makes them
    wait for each other (measured slower than writing in between forwards), so write inline.
    """
    if upstream.device.type == "cuda":
        return ThreadPoolExecutor(1, thread_name_prefix="featcache-writer")
    return InlineExecutor()


def _run_batch(upstream, batch, writer, on_batch) -> None:
    if not batch:
        return
    started = time.perf_counter()
    if len(batch) == 1:
        outputs = [_forward_one(upstream, *batch[0], writer)]
    else:
        try:
            outputs = upstream.forward([w for _, w in batch])  # each (L, T, D)
        except Exception:  # find the culprit: one at a time
            outputs = [_forward_one(upstream, u, w, writer) for u, w in batch]
    forward_seconds = time.perf_counter() - started
    for (utt_id, _), hidden in zip(batch, outputs, strict=True):
        if hidden is not None:
            writer.add(utt_id, hidden)
    if on_batch is not None:
        seconds = sum(len(w) for _, w in batch) / upstream.sample_rate
        on_batch(len(batch), seconds, forward_seconds)


def _forward_one(upstream, utt_id, wav, writer):
    """Forward one utterance; a failure is recorded against it instead of stopping the job."""
    try:
        return upstream.forward([wav])[0]
    except Exception as e:  # one bad utterance must not sink a 100-hour job
        writer.fail(utt_id, f"{type(e).__name__} in {upstream.name} forward: {e}")
        return None


def _worker_device(device: str) -> str:
    """On a multi-GPU machine, give each local dask worker its own GPU (by worker name)."""
    if device not in ("auto", "cuda"):
        return device
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count <= 1:
        return device
    try:
        from distributed import get_worker

        index = int(get_worker().name)
    except (ValueError, TypeError):
        return device
    return f"cuda:{index % count}"
