"""The block loader: batches cut from contiguous runs of utterances, read a run at a time.

Reading one utterance and layer per call (``CacheReader.get``) decodes each 1024-frame chunk once
per utterance that touches it and pays the store's per-call overhead hundreds of times per
batch. Here utterances are taken in *storage order* (part, offset) and grouped into **blocks**
of about ``block_mb`` of frames. An epoch:

1. permutes the blocks (from ``(seed, epoch)``);
2. takes them ``buffer_blocks`` at a time into a **window** (the bounded shuffle buffer, as
   webdataset's shuffle buffer or lhotse's dynamic bucketing);
3. sorts the window's utterances by length (ties at random), cuts them into batches of at most
   ``batch_frames`` padded frames (:func:`featcache.train.data.frame_batches`) and permutes the
   batches.

Every utterance is in exactly one block, so it comes exactly once per epoch; the plan is a pure
function of ``(seed, epoch)``, computed in the training process, so the batches are the same
whatever the worker count, and a resume at batch ``start`` replays the same plan and skips.
Each window is read by one DataLoader worker with one :meth:`CacheReader.read_frames` call per
(upstream, part, frame range): runs of the window's utterances that are consecutive in a part,
merged across gaps shorter than a chunk (a gap inside one chunk costs nothing to read, two calls
would decode that chunk twice). Without ``shuffle`` (dev/test) blocks and batches stay in
storage order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from featcache.train.data import Collate, frame_batches

BLOCK_MB = 16.0  # frames per block, in MB as stored
BUFFER_BLOCKS = 4  # blocks per shuffle window


def storage_blocks(dataset, block_mb: float = BLOCK_MB) -> list[list[int]]:
    """Dataset indices in storage order of the first upstream, cut into blocks of ~``block_mb``.

    A block ends where adding the next utterance would pass ``block_mb`` (an utterance larger
    than that is a block alone).
    """
    part, offset, _ = dataset.locations[0]
    order = np.lexsort((offset, part))  # storage order
    frame_bytes = dataset.frame_bytes()
    budget = block_mb * 1e6
    blocks: list[list[int]] = []
    current: list[int] = []
    size = 0.0
    for i in order.tolist():
        cost = dataset.lengths[i] * frame_bytes
        if current and size + cost > budget:
            blocks.append(current)
            current, size = [], 0.0
        current.append(i)
        size += cost
    if current:
        blocks.append(current)
    return blocks


def plan_epoch(
    blocks: list[list[int]],
    lengths: Sequence[int],
    batch_frames: int,
    shuffle: bool,
    seed: int,
    epoch: int,
    buffer_blocks: int = BUFFER_BLOCKS,
) -> list[list[list[int]]]:
    """The epoch's windows, each a list of batches of dataset indices (see the module doc)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    rng = np.random.default_rng([seed, epoch]) if shuffle else None
    order = rng.permutation(len(blocks)) if shuffle else np.arange(len(blocks))
    windows = []
    for w in range(0, len(order), buffer_blocks):
        members = np.array([i for b in order[w : w + buffer_blocks] for i in blocks[b]])
        if shuffle:
            members = members[np.lexsort((rng.permutation(len(members)), lengths[members]))]
        else:
            members = members[np.argsort(lengths[members], kind="stable")]
        batches = frame_batches(lengths.tolist(), batch_frames, members)
        if shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        windows.append(batches)
    return windows


class WindowSampler(torch.utils.data.Sampler):
    """Yields ``(batches, skip)`` per window of the current epoch; ``set_epoch`` redraws."""

    def __init__(self, dataset, batch_frames: int, shuffle: bool, seed: int,
                 block_mb: float = BLOCK_MB, buffer_blocks: int = BUFFER_BLOCKS) -> None:  # fmt: skip
        self.blocks = storage_blocks(dataset, block_mb)
        self.lengths = list(dataset.lengths)
        self.batch_frames = batch_frames
        self.shuffle = shuffle
        self.seed = seed
        self.buffer_blocks = buffer_blocks
        self.set_epoch(0)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Plan ``epoch`` and skip its first ``start`` batches (resuming mid-epoch)."""
        windows = plan_epoch(self.blocks, self.lengths, self.batch_frames, self.shuffle,
                             self.seed, epoch, self.buffer_blocks)  # fmt: skip
        self.total = sum(len(w) for w in windows)
        self.items: list[tuple[list[list[int]], int]] = []
        for batches in windows:
            if start >= len(batches):
                start -= len(batches)
                continue
            self.items.append((batches, start))
            start = 0
        self.remaining = sum(len(b) - s for b, s in self.items)

    def batches(self) -> list[list[int]]:
        """The remaining batches of the epoch, in order (tests and benchmarks)."""
        return [b for batches, skip in self.items for b in batches[skip:]]

    def __iter__(self) -> Iterator[tuple[list[list[int]], int]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class WindowDataset(torch.utils.data.Dataset):
    """``dataset.read_items`` of a window's utterances, collated into its batches (in a worker)."""

    def __init__(self, dataset, collate: Collate) -> None:
        self.dataset = dataset
        self.collate = collate

    def __getitem__(self, key: tuple[list[list[int]], int]) -> list[dict[str, Any]]:
        batches, skip = key
        batches = batches[skip:]
        items = self.dataset.read_items([i for b in batches for i in b])
        return [self.collate([items[i] for i in b]) for b in batches]


class BlockLoader:
    """Iterates the batches of the current epoch; ``set_epoch(epoch, start)`` as the samplers."""

    def __init__(self, dataset, batch_frames: int, collate_targets, workers: int, shuffle: bool,
                 seed: int, pin_memory: bool = False, block_mb: float = BLOCK_MB,
                 buffer_blocks: int = BUFFER_BLOCKS) -> None:  # fmt: skip
        self.sampler = WindowSampler(dataset, batch_frames, shuffle, seed, block_mb,
                                     buffer_blocks)  # fmt: skip
        self.loader = torch.utils.data.DataLoader(
            WindowDataset(dataset, Collate(collate_targets)),
            sampler=self.sampler,
            batch_size=None,
            collate_fn=_identity,
            num_workers=workers,
            pin_memory=pin_memory,
            prefetch_factor=2 if workers else None,
            persistent_workers=workers > 0,
        )

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.sampler.set_epoch(epoch, start)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for window in self.loader:
            yield from window

    def __len__(self) -> int:
        return self.sampler.remaining


def _identity(window):
    return window
