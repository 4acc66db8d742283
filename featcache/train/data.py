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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from featcache.fusion.align import resample_frames
from featcache.train.join import SPLITS, JoinResult, join_caches  # noqa: F401 (re-exported)
from featcache.train.sampler import FrameBatchSampler, frame_batches  # noqa: F401 (re-exported)

GAP_FRAMES = 1024  # merge reads across gaps shorter than this (the store's chunk length)


class SplitDataset(torch.utils.data.Dataset):
    """What every training dataset of a split holds: ids, raw labels, aligned frame counts,
    encoded targets, the layers read and each utterance's place in every store.

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
        self.locations = utterance_locations(self.readers, self.ids)  # block plans

    def __len__(self) -> int:
        return len(self.ids)

    def label_of(self, utt_id: str) -> Any:
        return self.labels[utt_id]

    def frame_bytes(self) -> int:
        """Stored bytes of one frame of every upstream (the layers read)."""
        return frame_bytes(self.readers, self.layers)


class CachedDataset(SplitDataset):
    """One item per utterance: every upstream's ``(T, L_i, D_i)`` frames plus the encoded target.

    Frames keep the store's float16 where the store holds float16 and no resampling is needed
    (float32 otherwise); :func:`to_float32` casts a batch exactly before the model. Parameters
    as :class:`SplitDataset`.
    """

    def __init__(self, readers, ids, frames, targets, labels, layers=None) -> None:
        super().__init__(readers, ids, frames, targets, labels, layers)
        # float16 stores ship float16 items and batches (half the bytes from the workers);
        # to_float32 casts them exactly in the training process
        self.dtypes = [
            np.float16 if str(r.attrs.get("dtype")) == "float16" else np.float32
            for r in self.readers
        ]
        self._held: list[list[np.ndarray]] | None = None

    in_memory = property(lambda self: self._held is not None)

    def held_bytes(self) -> float:
        """Memory :meth:`hold` takes: aligned frames, float32 where resampled."""
        total = 0.0
        frames = float(sum(self.lengths))
        for reader, selected, dtype, loc in zip(
            self.readers, self.layers, self.dtypes, self.locations, strict=True
        ):
            count = reader.num_layers if selected is None else len(selected)
            same = np.array_equal(loc[2], self.lengths)
            itemsize = np.dtype(dtype).itemsize if same else 4
            total += frames * count * reader.hidden_size * itemsize
        return total

    def hold(self) -> None:
        """Read every utterance once, in storage-order runs, and serve it from memory.

        What is held is each item's features after frame-rate alignment, laid out ``(L, T, D)``
        in memory (``collate`` then copies whole rows), so an epoch only pads and batches.
        """
        held = [read_runs(r, list(zip(*(a.tolist() for a in loc), strict=True)), layers, dtype)
                for r, loc, layers, dtype in
                zip(self.readers, self.locations, self.layers, self.dtypes, strict=True)]  # fmt: skip
        self._held = []
        for i, frames in enumerate(zip(*held, strict=True)):
            features = self._item(i, list(frames))["features"]  # list of (T, L_k, D_k)
            self._held.append([x.transpose(0, 1).contiguous().transpose(0, 1) for x in features])

    def _held_item(self, index: int) -> dict[str, Any]:
        features = self._held[index]  # list of (T, L_k, D_k), (L, T, D) in memory
        return {"id": self.ids[index], "features": features, "target": self.targets[index]}

    def read_items(self, indices: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Items of ``indices``, read with one call per (upstream, part, frame run)."""
        if self._held is not None:
            return {i: self._held_item(i) for i in indices}
        per_reader = []
        for r, loc, layers, dtype in zip(
            self.readers, self.locations, self.layers, self.dtypes, strict=True
        ):
            wanted = [(int(loc[0][i]), int(loc[1][i]), int(loc[2][i])) for i in indices]
            per_reader.append(read_runs(r, wanted, layers, dtype))
        return {i: self._item(i, [f[j] for f in per_reader]) for j, i in enumerate(indices)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self._held is not None:
            return self._held_item(index)
        utt_id = self.ids[index]
        frames = [read_stored(reader, utt_id, layers, dtype)  # (T_i, L, D)
                  for reader, layers, dtype in
                  zip(self.readers, self.layers, self.dtypes, strict=True)]  # fmt: skip
        return self._item(index, frames)

    def _item(self, index: int, frames: list[np.ndarray]) -> dict[str, Any]:
        features = []
        for array in frames:
            x = torch.from_numpy(array)  # (T_i, L, D)
            if x.shape[0] != self.lengths[index]:
                # resampled in float32 (interpolated values are not float16 values)
                x = resample_frames(x.float(), self.lengths[index])  # (T, L, D)
            features.append(x)
        return {"id": self.ids[index], "features": features, "target": self.targets[index]}


def utterance_locations(readers: Sequence, ids: Sequence[str]) -> list[tuple[np.ndarray, ...]]:
    """Per reader, ``(part, offset, num_frames)`` int64 arrays over ``ids``."""
    out = []
    for reader in readers:
        rows = np.array([reader.location(u) for u in ids], dtype=np.int64).reshape(-1, 3)
        out.append((rows[:, 0], rows[:, 1], rows[:, 2]))
    return out


def frame_bytes(readers: Sequence, layers: Sequence[list[int] | None]) -> int:
    """Stored bytes of one frame of every reader, counting only the layers read."""
    total = 0
    for reader, selected in zip(readers, layers, strict=True):
        count = reader.num_layers if selected is None else len(selected)
        total += (
            count * reader.hidden_size * np.dtype(reader.attrs.get("dtype", "float32")).itemsize
        )
    return total


def read_runs(reader, locations: list[tuple[int, int, int]], layers, dtype) -> list[np.ndarray]:
    """Frames ``(T, L, D)`` of each ``(part, offset, num_frames)``, one read per merged run."""
    out: list[np.ndarray | None] = [None] * len(locations)
    order = sorted(range(len(locations)), key=lambda j: locations[j][:2])
    runs: list[list[int]] = []  # indices into locations, one list per read
    part = end = -1
    for j in order:
        k, off, count = locations[j]
        if not runs or k != part or off - end > GAP_FRAMES:
            runs.append([])
            part, end = k, off
        runs[-1].append(j)
        end = max(end, off + count)
    for run in runs:
        part, start = locations[run[0]][0], locations[run[0]][1]
        stop = max(locations[j][1] + locations[j][2] for j in run)
        frames = reader.read_frames(part, start, stop, layers, dtype)  # (F, L, D)
        for j in run:
            _, off, count = locations[j]
            out[j] = frames[off - start : off - start + count]  # (T, L, D) view
    return out  # type: ignore[return-value]


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
        # numpy copies: torch's strided float16 copy_/zero_ run its thread pool per call, 10-25x
        # slower than numpy when the cores are busy (measured in benchmarks/read_throughput.py)
        out = padded.numpy()
        for b, item in enumerate(items):
            x = item["features"][k].to(dtype).numpy()  # (T_b, L, D)
            out[:, b, : x.shape[0]] = x.transpose(1, 0, 2)
            out[:, b, x.shape[0] :] = 0
        features.append(padded)
    mask = torch.arange(frames).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    batch = {"features": features, "lengths": lengths, "mask": mask,
             "ids": [it["id"] for it in items]}  # fmt: skip
    batch.update(collate_targets([it["target"] for it in items]))
    return batch


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor, in shared memory inside a DataLoader worker (as default_collate
    does: sending it to the training process then moves no bytes).

    In the training process it is numpy's memory: numpy asks Linux for transparent huge pages
    on large arrays, so filling a fresh batch costs a quarter of torch.empty's page faults
    (measured on a 30 MB float16 batch: 3.6 ms vs 14 ms).
    """
    if torch.utils.data.get_worker_info() is None:
        return torch.from_numpy(np.empty(shape, torch.empty(0, dtype=dtype).numpy().dtype))
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
