"""Which loader feeds training, and whether the frames are held in memory.

``--loader blocks`` reads storage-order runs of utterances (:mod:`featcache.train.blocks`);
``--loader utterances`` reads one utterance per item in length-bucketed random order over the
whole split (:class:`featcache.train.data.FrameBatchSampler`), the random access a DDP run also
uses (its ranks split batches, not blocks). Both expose ``set_epoch(epoch, start)``, iteration
over the epoch's batches and ``len`` (batches left). The two cut different batches from the
same seed, so the choice changes what a run computes.

``--loader auto`` (default) decides from the cache alone (:func:`choose_loader`): a train split
whose stored frames are under :data:`AUTO_BLOCKS_BYTES` reads per utterance (a full shuffle,
and the batches of featcache before the block loader), a larger one by blocks. It never looks
at the machine's free memory: the same cache gives the same batches everywhere, and a resumed
run keeps the choice recorded in its identity.json.

``--cache-in-memory auto|off|GB``: with ``auto`` the train and dev splits are read once (train
first) and held when their stored frames fit in half the memory available when training starts;
a number is that budget in GB. Held datasets are served from the training process (no workers:
nothing is left to read), in the same batches as from disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from featcache.errors import ConfigError
from featcache.train.blocks import BlockLoader, WindowSampler
from featcache.train.data import FrameBatchSampler, make_loader

# a train split with fewer stored frame bytes than this reads per utterance under --loader auto:
# it is held in memory on any machine that trains (or read from the page cache), where block
# reads gain nothing and the whole-split shuffle is the better one
AUTO_BLOCKS_BYTES = 1e9


class UtteranceLoader:
    """The per-utterance DataLoader behind the same interface as :class:`BlockLoader`."""

    def __init__(self, dataset, batch_frames: int, collate_targets, workers: int, shuffle: bool,
                 seed: int, pin_memory: bool = False, rank: int = 0,
                 world_size: int = 1) -> None:  # fmt: skip
        self.sampler = FrameBatchSampler(dataset.lengths, batch_frames, shuffle=shuffle,
                                         seed=seed, rank=rank, world_size=world_size)  # fmt: skip
        self.loader = make_loader(dataset, self.sampler, collate_targets, workers,
                                  pin_memory=pin_memory, seed=seed)  # fmt: skip

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.sampler.set_epoch(epoch, start)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.sampler)


class IndexedLoader:
    """Batches of a dataset held as tensors (:class:`featcache.train.pooled.PooledDataset`), cut
    by indexing in the training process: the batch plan of ``sampler`` (the chosen loader's),
    without a DataLoader or per-item collation."""

    def __init__(self, dataset, sampler, collate_targets) -> None:
        self.dataset = dataset
        self.sampler = sampler  # FrameBatchSampler or WindowSampler
        self.collate_targets = collate_targets

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.sampler.set_epoch(epoch, start)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        plan = self.sampler.batches
        for indices in plan() if callable(plan) else plan:
            yield self.dataset.batch(indices, self.collate_targets)

    def __len__(self) -> int:
        remaining = getattr(self.sampler, "remaining", None)  # WindowSampler: batches left
        return len(self.sampler) if remaining is None else remaining


def choose_loader(requested: str, train_bytes: float, recorded: str | None = None) -> dict:
    """The loader a run uses: ``{"name": "blocks"|"utterances", "reason": ...}``.

    Parameters
    ----------
    requested
        ``--loader``: ``auto``, ``blocks`` or ``utterances``.
    train_bytes
        Stored bytes of the train split's frames (the layers read), from the cache.
    recorded
        The loader a run folder already trains with (its identity.json), kept by ``auto``.
    """
    if requested != "auto":
        return {"name": requested, "reason": f"--loader {requested}"}
    gb, limit = train_bytes / 1e9, AUTO_BLOCKS_BYTES / 1e9
    small = train_bytes < AUTO_BLOCKS_BYTES
    name = "utterances" if small else "blocks"
    reason = f"auto: train frames {gb:.3f} GB {'<' if small else '>='} {limit:g} GB"
    if recorded in ("blocks", "utterances") and recorded != name:
        return {"name": recorded,
                "reason": f"auto: {recorded}, which this run folder started with ({reason})"}  # fmt: skip
    return {"name": name, "reason": reason}


def build_loader(dataset, config, collate_targets, shuffle: bool, pin_memory: bool, dist):
    """The loader of one split (train: ``shuffle``; a DDP train split reads per utterance)."""
    if config.loader not in ("blocks", "utterances"):
        raise ValueError(f"loader {config.loader!r}: resolve --loader auto with choose_loader")
    workers = 0 if getattr(dataset, "in_memory", False) else config.num_workers
    ranks = shuffle and dist.world_size > 1
    if hasattr(dataset, "batch"):  # held as tensors: batches by indexing, the same plan
        if config.loader == "blocks" and not ranks:
            sampler = WindowSampler(dataset, config.batch_frames, shuffle, config.seed)
        else:
            sampler = FrameBatchSampler(dataset.lengths, config.batch_frames, shuffle=shuffle,
                                        seed=config.seed, rank=dist.rank if ranks else 0,
                                        world_size=dist.world_size if ranks else 1)  # fmt: skip
        return IndexedLoader(dataset, sampler, collate_targets)
    if config.loader == "blocks" and not ranks:
        return BlockLoader(dataset, config.batch_frames, collate_targets, workers, shuffle,
                           config.seed, pin_memory)  # fmt: skip
    return UtteranceLoader(dataset, config.batch_frames, collate_targets, workers, shuffle,
                           config.seed, pin_memory, dist.rank if ranks else 0,
                           dist.world_size if ranks else 1)  # fmt: skip


def memory_budget(spec: str) -> float:
    """Bytes allowed for held frames: ``off`` 0, ``auto`` half the available memory, or GB."""
    if spec == "off":
        return 0.0
    if spec == "auto":
        return 0.5 * available_memory()
    try:
        gb = float(spec)
    except ValueError:
        raise ConfigError(f"--cache-in-memory {spec!r}: use auto, off or a size in GB") from None
    if gb < 0:
        raise ConfigError(f"--cache-in-memory {spec!r}: a size in GB must be >= 0")
    return gb * 1e9


def available_memory() -> float:
    """Bytes of memory available now (MemAvailable on Linux, free pages elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def hold_in_memory(datasets: dict, spec: str) -> dict[str, Any]:
    """Read ``train`` then ``dev`` into memory while they fit ``spec``; what was held, for
    summary.json (``held`` splits, their ``gb`` and the ``budget_gb``)."""
    budget = memory_budget(spec)
    held, used = [], 0.0
    for split in ("train", "dev"):
        dataset = datasets.get(split)
        if dataset is None or getattr(dataset, "in_memory", False) or not hasattr(dataset, "hold"):
            continue
        size = dataset.held_bytes()
        if used + size > budget:
            break
        dataset.hold()
        held.append(split)
        used += size
    return {"mode": spec, "held": held, "gb": round(used / 1e9, 3),
            "budget_gb": round(budget / 1e9, 3)}  # fmt: skip
