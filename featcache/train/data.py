"""Streaming cached layers of several upstreams into training batches.

:func:`~featcache.train.join.join_caches` (re-exported here) matches the caches' utterances with
the manifest's labels and splits. :class:`CachedDataset` reads one utterance of
every upstream per item with ``CacheReader.get`` (the cache never sits in memory; readers pickle
into DataLoader workers), :class:`FrameBatchSampler` groups utterances of similar length into
batches of at most ``batch_frames`` padded frames, and :func:`collate` pads them into
``list[(L_i, B, T, D_i)]`` plus lengths, a frame mask and the task's targets.

Float16 stores stay float16 until the training process (half the bytes read, padded and shipped
from the workers, which collate straight into shared memory); :func:`to_float32` then casts them
on the device, exactly, so training sees the same float32 values as from ``CacheReader.get``.
:func:`make_loader` builds the DataLoader the trainer uses.

Upstreams with different frame rates are resampled per utterance (before padding, so padding never
leaks into real frames) to the frame count of the fastest upstream, by the same frame-centre
linear interpolation as :func:`featcache.fusion.align.interpolate_time`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from featcache.errors import ConfigError
from featcache.fusion.align import resample_frames
from featcache.train.join import SPLITS, JoinResult, join_caches  # noqa: F401 (re-exported)


class CachedDataset(torch.utils.data.Dataset):
    """One item per utterance: every upstream's ``(T, L_i, D_i)`` frames plus the encoded target.

    Frames keep the store's float16 where the store holds float16 and no resampling is needed
    (float32 otherwise); :func:`to_float32` casts a batch exactly before the model.

    Parameters
    ----------
    readers
        One :class:`CacheReader` per upstream (picklable, so DataLoader workers get their own).
    ids
        Utterance ids of this dataset.
    frames
        Utterance id -> aligned frame count.
    targets
        Encoded targets, one per id.
    labels
        Raw label values, one per id (what predictions are scored against).
    layers
        Per reader, the model layer indices to read (None = every stored layer).
    """

    def __init__(
        self,
        readers: Sequence,
        ids: Sequence[str],
        frames: dict[str, int],
        targets: Sequence[Any],
        labels: Sequence[Any],
        layers: Sequence[list[int] | None] | None = None,
    ) -> None:
        self.readers = list(readers)
        self.ids = list(ids)
        self.labels = dict(zip(self.ids, labels, strict=True))
        self.lengths = [int(frames[u]) for u in self.ids]
        self.targets = list(targets)
        self.layers = list(layers) if layers is not None else [None] * len(self.readers)
        # float16 stores ship float16 items and batches (half the bytes from the workers);
        # to_float32 casts them exactly in the training process
        self.dtypes = [
            np.float16 if str(r.attrs.get("dtype")) == "float16" else np.float32
            for r in self.readers
        ]

    def __len__(self) -> int:
        return len(self.ids)

    def label_of(self, utt_id: str) -> Any:
        return self.labels[utt_id]

    def __getitem__(self, index: int) -> dict[str, Any]:
        utt_id = self.ids[index]
        features = []
        for reader, layers, dtype in zip(self.readers, self.layers, self.dtypes, strict=True):
            x = torch.from_numpy(read_stored(reader, utt_id, layers, dtype))  # (T_i, L, D)
            if x.shape[0] != self.lengths[index]:
                # resampled in float32 (interpolated values are not float16 values)
                x = resample_frames(x.float(), self.lengths[index])  # (T, L, D)
            features.append(x)
        return {"id": utt_id, "features": features, "target": self.targets[index]}


def read_stored(reader, utt_id: str, layers: list[int] | None, dtype) -> np.ndarray:
    """One utterance's frames ``(T, L, D)`` as ``dtype``, the store's dtype for float16 stores.

    numpy's float16 -> float32 cast is about half of a read of 13 x 768 float16 frames, and
    casting back for the workers' transfer would cost as much again: a float16 store is read as
    stored and cast once, on the training device (:func:`to_float32`).
    """
    if dtype != np.float16:
        return reader.get(utt_id, layers=layers)  # float32
    return reader.get(utt_id, layers=layers, dtype=None)  # (T, L, D) float16


def collate(
    items: list[dict[str, Any]], collate_targets: Callable[[list[Any]], dict[str, torch.Tensor]]
) -> dict[str, Any]:
    """Pad a list of items into a batch.

    Returns a dict with ``features`` (list of ``(L_i, B, T, D_i)``, zero-padded, in the items'
    dtype: float16 or float32, see :func:`to_float32`), ``lengths`` ``(B,)``, ``mask`` ``(B, T)``
    bool, ``ids`` and the task's target tensors. In a DataLoader worker the padded features are
    allocated in shared memory, so they reach the training process without another copy.
    """
    lengths = torch.tensor([it["features"][0].shape[0] for it in items], dtype=torch.long)
    frames = int(lengths.max())
    features = []
    for k in range(len(items[0]["features"])):
        _, layers, dim = items[0]["features"][k].shape
        dtype = items[0]["features"][k].dtype
        for item in items[1:]:
            dtype = torch.promote_types(dtype, item["features"][k].dtype)
        padded = _empty((layers, len(items), frames, dim), dtype)  # (L, B, T, D)
        for b, item in enumerate(items):
            x = item["features"][k]  # (T_b, L, D)
            padded[:, b, : x.shape[0]].copy_(x.permute(1, 0, 2))
            padded[:, b, x.shape[0] :].zero_()
        features.append(padded)
    mask = torch.arange(frames).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    batch = {"features": features, "lengths": lengths, "mask": mask,
             "ids": [it["id"] for it in items]}  # fmt: skip
    batch.update(collate_targets([it["target"] for it in items]))
    return batch


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor, in shared memory inside a DataLoader worker (as default_collate
    does: sending it to the training process then moves no bytes)."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    numel = int(np.prod(shape))
    storage = torch.empty(0, dtype=dtype)._typed_storage()._new_shared(numel, device="cpu")
    return torch.empty(0, dtype=dtype).new(storage).view(shape)


def to_float32(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch with float32 ``features`` (exact from float16; call after moving to the device,
    so only half the bytes travel)."""
    return {**batch, "features": [x.float() for x in batch["features"]]}


class Collate:
    """Picklable ``collate_fn`` bound to a task's target collation."""

    def __init__(self, collate_targets: Callable[[list[Any]], dict[str, torch.Tensor]]) -> None:
        self.collate_targets = collate_targets

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return collate(items, self.collate_targets)


def make_loader(
    dataset: CachedDataset,
    sampler: torch.utils.data.Sampler,
    collate_targets: Callable[[list[Any]], dict[str, torch.Tensor]],
    workers: int,
    pin_memory: bool = False,
    prefetch_factor: int = 4,
    seed: int = 0,
) -> torch.utils.data.DataLoader:
    """The DataLoader the trainer (and the benchmarks) use: ``sampler`` gives whole batches,
    ``workers`` processes read and collate them and persist across epochs.

    ``pin_memory`` only helps a CUDA device. Batches come in the store's dtype; pass them through
    :func:`to_float32` after moving them to the device.
    """
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=Collate(collate_targets),
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=prefetch_factor if workers else None,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )


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
