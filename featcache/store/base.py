"""What every layer-store backend provides, and the helpers they share.

A store holds one upstream's hidden states for a corpus (DESIGN.md, "The layer cache"). It is
built in *parts*: each part holds the frames of a fixed list of utterances, is written by exactly
one process into a temporary place, and becomes visible only when it is complete (one atomic
rename). The driver then writes the index (``utt_id``, ``part``, ``offset``, ``num_frames``,
``pooled/mean``, ``errors``) from the complete parts and marks the store complete. A crash at any
moment therefore leaves complete parts plus garbage that the next run discards.

Backends (:mod:`featcache.store.zarr`, :mod:`featcache.store.hdf5`) implement :class:`Backend`;
one conformance suite (``tests/test_store_conformance.py``) runs against each.

Layout beside a store ``CACHE/<slug>.zarr`` (or ``.h5``) while it is being built:
``CACHE/<slug>.zarr.work/`` holds ``plan.json`` (which utterances go in which part) and the
temporary part folders/files. It is removed once the store is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featcache.errors import ConfigError, StoreError

FORMAT_VERSION = 1
FORMATS = {"zarr": ".zarr", "hdf5": ".h5"}
DTYPES = ("float16", "float32")
# codecs by name (Blosc, byte shuffle, level 1); lz4 by default, see featcache.store.zarr
COMPRESSIONS = ("lz4", "zstd", "none")
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

    def write(self, start: int, frames: np.ndarray) -> None:
        """Store ``frames`` (F, L, D) in the store dtype at rows ``start:start+F``."""
        raise NotImplementedError

    def commit(self, meta: PartMeta, pooled: np.ndarray) -> None:
        """Write the part's metadata and pooled means (N, L, D), then make it visible atomically."""
        raise NotImplementedError

    def abort(self) -> None:
        """Discard the temporary part."""
        raise NotImplementedError


class Backend:
    """One on-disk format. Subclasses set ``name`` and ``suffix`` and implement the methods."""

    name = ""
    suffix = ""

    def create(self, path: Path, attrs: dict) -> None:
        """Create an empty, incomplete store at ``path`` (which does not exist)."""
        raise NotImplementedError

    def read_attrs(self, path: Path) -> dict:
        """The ``featcache`` attrs dict of the store at ``path``."""
        raise NotImplementedError

    def mark_incomplete(self, path: Path) -> None:
        """Before parts are added to a complete store: readers must not trust its index.

        A backend whose index is replaced atomically (HDF5) may keep serving the old index.
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


def get_backend(format: str) -> Backend:
    """The backend registered under ``format`` ("zarr" or "hdf5")."""
    if format == "zarr":
        from featcache.store.zarr import ZarrBackend

        return ZarrBackend()
    if format == "hdf5":
        from featcache.store.hdf5 import HDF5Backend

        return HDF5Backend()
    raise ConfigError(f"unknown store format {format!r}; use one of: {', '.join(FORMATS)}")


def format_of(path: Path) -> str:
    """The format of a store path, from its suffix."""
    for name, suffix in FORMATS.items():
        if path.name.endswith(suffix):
            return name
    raise StoreError(f"{path}: not a featcache store (expected a name ending in .zarr or .h5)")


def store_path(cache_dir: Path, slug: str, format: str) -> Path:
    return Path(cache_dir) / f"{slug}{FORMATS[format]}"


def work_dir(path: Path) -> Path:
    """Scratch folder beside a store, holding its plan and temporary parts."""
    return path.with_name(path.name + ".work")


def list_stores(cache_dir) -> dict[str, Path]:
    """Stores in a cache folder: store name (the upstream slug) -> path.

    Parameters
    ----------
    cache_dir : str or Path
        A cache folder written by ``featcache extract``.

    Returns
    -------
    dict
        Sorted by name; empty if the folder holds no store.
    """
    cache_dir = Path(cache_dir)
    out = {}
    if not cache_dir.is_dir():
        return out
    for p in sorted(cache_dir.iterdir()):
        for suffix in FORMATS.values():
            if p.name.endswith(suffix) and not p.name.startswith("."):
                out[p.name[: -len(suffix)]] = p
    return out


class PartWriter:
    """Collects one part's utterances and hands whole chunks to a backend.

    Layer selection, pooling, the (L, T, D) -> (T, L, D) transpose, the dtype cast, compression
    and I/O all run on ``executor``: a one-thread pool makes ``add`` return at once and overlaps
    the writing with the model's next forward (the extract pipeline does this on GPUs); an inline
    executor writes in between forwards. ``close`` returns a future that completes when the part
    is committed.
    """

    def __init__(self, sink: PartSink, layers: list[int], dtype: str, executor: ThreadPoolExecutor):
        self._sink = sink
        self._layers = np.asarray(layers)
        self._all_layers = list(layers) == list(range(len(layers)))
        self._dtype = np.dtype(dtype)
        self._executor = executor
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._written = 0
        self._pooled: list[np.ndarray] = []
        self._meta = PartMeta()
        self._pending: list[Future] = []

    def add(self, utt_id: str, hidden: np.ndarray) -> None:
        """Queue one utterance's hidden states (L_model, T, D) float32."""
        self._pending.append(self._executor.submit(self._add, utt_id, hidden))

    def fail(self, utt_id: str, reason: str) -> None:
        """Record that an utterance of this part failed."""
        self._meta.errors[utt_id] = reason

    def close(self) -> Future:
        """Flush and commit; the future raises whatever the writer thread raised."""
        return self._executor.submit(self._close, list(self._pending))

    def _add(self, utt_id: str, hidden: np.ndarray) -> None:
        if not (self._all_layers and len(hidden) == len(self._layers)):
            hidden = hidden[self._layers]  # (L, T, D) kept layers only
        frames = _to_frames(hidden, self._dtype)  # (T, L, D)
        if _has_inf(frames) if self._dtype == np.float16 else not np.isfinite(frames).all():
            self._meta.errors[utt_id] = _non_finite_reason(hidden)
            return
        self._pooled.append(hidden.mean(axis=1, dtype=np.float64).astype(np.float32))  # (L, D)
        self._meta.utt_ids.append(utt_id)
        self._meta.num_frames.append(int(frames.shape[0]))
        self._buffer.append(frames)
        self._buffered += frames.shape[0]
        if self._buffered >= WRITE_BLOCK_FRAMES:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._buffered:
            return
        block = np.concatenate(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        n = len(block) if final else len(block) // CHUNK_FRAMES * CHUNK_FRAMES
        self._sink.write(self._written, block[:n])
        self._written += n
        rest = block[n:]
        self._buffer = [rest] if len(rest) else []
        self._buffered = len(rest)

    def _close(self, pending: list[Future]) -> None:
        try:
            for f in pending:
                f.result()
            self._flush(final=True)
            empty = np.zeros((0, *self._sink.shape_ld), np.float32)
            pooled = np.stack(self._pooled) if self._pooled else empty  # (N, L, D)
            self._sink.commit(self._meta, pooled)
        except BaseException:
            self._sink.abort()
            raise


def _to_frames(hidden: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(L, T, D) float32 -> contiguous (T, L, D) in the store dtype.

    numpy's float32 -> float16 cast runs at ~1 GB/s; torch's is ~3x faster, so use torch when
    the process has already imported it (extraction always has). Both round to nearest even.
    """
    torch = sys.modules.get("torch")
    if torch is not None and dtype == np.float16:
        t = torch.from_numpy(np.ascontiguousarray(hidden))  # (L, T, D)
        return t.permute(1, 0, 2).to(torch.float16).contiguous().numpy()  # (T, L, D)
    with np.errstate(over="ignore"):  # overflow is detected by the caller
        return np.ascontiguousarray(hidden.transpose(1, 0, 2), dtype=dtype)  # (T, L, D)


def _non_finite_reason(hidden: np.ndarray) -> str:
    if not np.isfinite(hidden).all():
        return "the upstream produced NaN or infinite hidden states"
    return (
        f"hidden states reach {float(np.abs(hidden).max()):.4g}, beyond float16's range "
        f"(65504); extract this upstream with --dtype float32"
    )


def _has_inf(frames: np.ndarray) -> bool:
    """True if a float16 array holds inf or NaN (exponent bits all set), without a float pass."""
    return bool(((frames.view(np.uint16) & 0x7C00) == 0x7C00).any())


def parse_layers(spec: str | None, num_layers: int, upstream: str = "this upstream") -> list[int]:
    """Parse a ``--layers`` spec such as ``0,4,8-12`` into sorted unique indices.

    Parameters
    ----------
    spec : str or None
        Comma-separated indices and inclusive ranges; None or ``all`` keeps every layer.
        Negative indices count from the end (``-1`` is the last layer).
    num_layers : int
        L of the upstream.
    upstream : str
        Named in error messages.
    """
    if spec is None or spec.strip() in ("", "all"):
        return list(range(num_layers))
    out: set[int] = set()
    for item in spec.split(","):
        item = item.strip()
        try:
            if "-" in item[1:]:
                cut = item.index("-", 1)
                out.update(range(int(item[:cut]), int(item[cut + 1 :]) + 1))
            else:
                i = int(item)
                out.add(i % num_layers if -num_layers <= i < 0 else i)
        except ValueError:
            raise ConfigError(
                f"--layers {spec!r}: cannot parse {item!r}; use indices and ranges like 0,4,8-12"
            ) from None
    bad = sorted(i for i in out if not 0 <= i < num_layers)
    if bad or not out:
        raise ConfigError(
            f"--layers {spec!r}: layer(s) {bad} out of range; {upstream} has layers "
            f"0-{num_layers - 1}; extract it in a separate run with other --layers"
        )
    return sorted(out)


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(obj, sort_keys=True))
    os.replace(tmp, path)


def remove_path(path: Path) -> None:
    """Remove a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def tmp_name(k: int) -> str:
    """A unique temporary name for part ``k`` written by this process."""
    return f"tmp-{k}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
