"""What every layer-store backend provides: the abstract backend and the store's dataclasses.

A store holds one upstream's hidden states for a corpus (DESIGN.md, "The layer cache"). It is
built in *parts*: each part holds the frames of a fixed list of utterances, is written by exactly
one process into a temporary place, and becomes visible only when it is complete (one atomic
rename). The driver then writes the index (``utt_id``, ``part``, ``offset``, ``num_frames``,
``pooled/mean``, ``errors``) from the complete parts and marks the store complete. A crash at any
moment therefore leaves complete parts plus garbage that the next run discards.

Backends (:mod:`featcache.store.zarr`, :mod:`featcache.store.hdf5`) implement :class:`Backend`
and are registered by name in :mod:`featcache.store`; one conformance suite
(``tests/test_store_conformance.py``) runs against each. The write step (frames in, whole chunks
out) is :mod:`featcache.store.writer`; the policy of a cache folder (which store, resume,
append, overwrite) is :class:`featcache.store.cache.Cache`.

Layout beside a store ``CACHE/<slug>.zarr`` (or ``.h5``) while it is being built:
``CACHE/<slug>.zarr.work/`` holds ``plan.json`` (which utterances go in which part) and the
temporary part folders/files. It is removed once the store is complete.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
DEFAULT_COMPRESSION = "lz4"

# Chunk geometry, chosen with benchmarks/store_io.py (see the backends' docstrings).
CHUNK_FRAMES = 1024
# Frames handed to the backend per write: whole chunks, so no chunk is rewritten.
WRITE_BLOCK_FRAMES = 4 * CHUNK_FRAMES


@dataclass
class PartMeta:
    """What a complete part holds, besides its frames.

    Attributes
    ----------
    utt_ids : list of str
        Utterances with frames, in the order their frames are concatenated.
    num_frames : list of int
        Frames of each of ``utt_ids``.
    errors : dict
        Utterance id -> reason, for the part's utterances that failed.
    writer : dict
        ``host`` and ``pid`` of the process that wrote the part.
    """

    utt_ids: list[str] = field(default_factory=list)
    num_frames: list[int] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    writer: dict = field(default_factory=lambda: {"host": socket.gethostname(), "pid": os.getpid()})

    def to_json(self) -> dict:
        return {
            "utt_id": self.utt_ids,
            "num_frames": self.num_frames,
            "errors": self.errors,
            "writer": self.writer,
        }

    @classmethod
    def from_json(cls, d: dict) -> PartMeta:
        nums = [int(n) for n in d["num_frames"]]
        return cls(list(d["utt_id"]), nums, dict(d["errors"]), dict(d.get("writer", {})))


class PartSink:
    """Backend side of one part being written: frames arrive in order, then ``commit``."""

    shape_ld: tuple[int, int]  # (L, D) of every frame

    def _open_arrays(self, make, dtype: str) -> None:
        """The part's frames and, for int8, scales, made by the backend's ``make(name, chunks,
        dtype)``: the one place the part layout is decided. Frames in ``(C, 1, D)`` chunks (one
        layer per chunk, so one layer reads alone); int8 scales one row per chunk of frames,
        all layers in one small ``(1, L, D)`` chunk."""
        num_layers, dim = self.shape_ld
        self._frames = make("frames", (CHUNK_FRAMES, 1, max(1, dim)), dtype)
        self._scale = None
        if dtype == "int8":
            self._scale = make("scale", (1, max(1, num_layers), max(1, dim)), "float32")

    def write(self, start: int, frames: np.ndarray, scale: np.ndarray | None = None) -> None:
        """Store ``frames`` (F, L, D) in the store dtype at rows ``start:start+F``.

        int8 stores also get ``scale`` (ceil(F / C), L, D) float32 for rows ``start // C ...``;
        ``start`` is then a multiple of C (:data:`CHUNK_FRAMES`).
        """
        raise NotImplementedError

    def commit(self, meta: PartMeta, pooled: np.ndarray) -> None:
        """Write the part's metadata and pooled means (N, L, D), then make it visible atomically."""
        raise NotImplementedError

    def abort(self) -> None:
        """Discard the temporary part."""
        raise NotImplementedError


class Backend:
    """One on-disk format, registered by name in :data:`featcache.store.FORMATS`.

    Subclasses set the capability flags and implement the methods.

    Attributes
    ----------
    atomic_index : bool
        :meth:`finalize` replaces the whole index in one step (HDF5: a new file renamed over the
        old). When False (Zarr rewrites its index arrays one by one) the builder calls
        :meth:`mark_incomplete` before adding parts to a complete store.
    single_file : bool
        The store is one file (HDF5) rather than a folder (Zarr).
    """

    atomic_index = False
    single_file = False

    def create(self, path: Path, attrs: dict) -> None:
        """Create an empty, incomplete store at ``path`` (which does not exist)."""
        raise NotImplementedError

    def read_attrs(self, path: Path) -> dict:
        """The ``featcache`` attrs dict of the store at ``path``."""
        raise NotImplementedError

    def mark_incomplete(self, path: Path) -> None:
        """Before parts are added to a complete store: readers must not trust its index.

        Called only when ``atomic_index`` is False.
        """
        raise NotImplementedError

    def begin_part(
        self, path: Path, k: int, shape_ld: tuple[int, int], dtype: str, compression: str
    ) -> PartSink:
        """Start writing part ``k`` into a temporary place; see :class:`PartSink`."""
        raise NotImplementedError

    def complete_parts(self, path: Path) -> dict[int, PartMeta]:
        """Every complete part of the store (including ones not yet in the index)."""
        raise NotImplementedError

    def read_part_pooled(self, path: Path, k: int) -> np.ndarray:
        """Pooled means (n_k, L, D) float32 of complete part ``k``, in its ``utt_ids`` order."""
        raise NotImplementedError

    def finalize(self, path: Path, attrs: dict, index: Index) -> None:
        """Write the index and the attrs (with ``complete`` true) from the complete parts."""
        raise NotImplementedError

    def open_read(self, path: Path):
        """A read-only handle with ``attrs()``, ``index()``, ``frames(k)``, ``pooled()``,
        ``part_numbers()``, ``part_meta(k)`` and ``part_pooled(k)``."""
        raise NotImplementedError

    def drop_parts(self, path: Path, parts: list[int]) -> None:
        """Remove ``parts`` and mark the store incomplete (``featcache verify --repair``)."""
        raise NotImplementedError


@dataclass
class Index:
    """The store's top-level index, in manifest order (utterances with frames only)."""

    utt_id: list[str]
    part: np.ndarray  # int32 [N]
    offset: np.ndarray  # int64 [N]
    num_frames: np.ndarray  # int64 [N]
    pooled: np.ndarray  # float32 [N, L, D]
    error_ids: list[str]
    error_reasons: list[str]
