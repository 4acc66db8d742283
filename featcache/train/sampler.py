"""Length-bucketed batches of at most ``batch_frames`` padded frames (the per-utterance loader's
sampler, and the batch cutting the block loader applies inside each window)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from featcache.errors import ConfigError


def frame_batches(lengths: Sequence[int], batch_frames: int, order: np.ndarray) -> list[list[int]]:
    """Cut ``order`` (indices sorted by length) into batches of at most ``batch_frames`` padded
    frames (``count * max length``); an utterance longer than ``batch_frames`` is a batch alone."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order.tolist():
        longest_if_added = max(longest, lengths[i])
        if current and longest_if_added * (len(current) + 1) > batch_frames:
            batches.append(current)
            current, longest_if_added = [], lengths[i]
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    return batches


class FrameBatchSampler(torch.utils.data.Sampler):
    """Length-bucketed batches of at most ``batch_frames`` padded frames, reproducible per epoch.

    Utterances are sorted by length (ties broken at random) and cut into batches, so each batch
    holds similar lengths; with ``shuffle`` the batch order is a permutation drawn from
    ``(seed, epoch)``. With ``world_size > 1`` the batch list is padded by repetition to a
    multiple of the world size and rank r takes batches r, r + world_size, ... ``start`` skips the
    first batches of this rank (resuming in the middle of an epoch).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_frames: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
    ) -> None:
        if batch_frames < 1:
            raise ConfigError(f"--batch-frames must be positive, got {batch_frames}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_frames = batch_frames
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.set_epoch(epoch, start)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Draw the batches of ``epoch`` and skip the first ``start`` (a persistent DataLoader
        picks this up at its next ``iter``)."""
        lengths = self.lengths
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = np.lexsort((rng.permutation(len(lengths)), lengths))
        else:
            order = np.argsort(lengths, kind="stable")
        batches = frame_batches(lengths.tolist(), self.batch_frames, order)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.world_size > 1:
            extra = (-len(batches)) % self.world_size
            batches = batches + [batches[i % len(batches)] for i in range(extra)]
            batches = batches[self.rank :: self.world_size]
        self.batches = batches[start:]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
