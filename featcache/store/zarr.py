"""Zarr v3 backend: ``CACHE/<slug>.zarr``, a folder any zarr 3 reader opens.

Chunks and codecs, measured with ``benchmarks/store_io.py`` on this (shared, noisy) 2-core machine,
float16 (F, L, D) arrays of synthetic (8192 x 13 x 768) and real whisper-tiny.en (16384 x 5 x 384)
hidden states:

- ``parts/<k>/frames`` [F, L, D] is chunked ``(1024, 1, D)``: one chunk holds 1024 frames of one
  layer. Reading one layer (probing, CKA, ``ws`` over a subset) then touches 1/L of the bytes:
  11 ms vs 175 ms with ``(1024, L, D)`` chunks for the 13-layer array (16x), 16 vs 69 ms for the
  5-layer one, with full reads as fast. 1024 x 768 x 2 bytes = 1.5 MB per chunk.
- No sharding: sharded writes and reads were 1.5-4x slower in zarr-python 3.1 here, and parts
  already bound the file count (L x F / 1024 chunk files per part).
- Blosc lz4, level 1, byte shuffle by default. Hidden states barely compress losslessly: lz4 1.00-
  1.01x, zstd-1 1.09-1.12x. lz4 costs little; zstd-1 (``--compression zstd``) saves ~10% of disk
  but reads 2-3x slower, and reading speed is what cached training needs
  (``--compression none`` is fastest of all when disk space is no concern).

Strings (``utt_id``, ``errors/*``) use zarr 3's variable-length UTF-8 type; plain
``zarr.open_group(path)["utt_id"][:]`` returns a numpy array of ``str``.

Every array goes through :func:`create_checked_array`: its codec chain ends in a ``crc32c``
checksum, so a flipped or truncated byte is a read error, and every chunk is written even when
it equals the fill value, so a complete part has every chunk key and a deleted chunk is detected
(zarr would otherwise read it back as zeros): :func:`missing_chunks`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from featcache.atomic import fsync_dir
from featcache.errors import StoreError, StoreNotFoundError
from featcache.store.base import (
    CHUNK_FRAMES,
    DEFAULT_COMPRESSION,
    Backend,
    Index,
    PartMeta,
    PartSink,
)
from featcache.store.damage import DECODE_ERRORS, CheckedFrames, chunk_rows, damaged
from featcache.store.location import is_remote
from featcache.store.paths import remove_path, tmp_name, work_dir

PART_ATTR = "featcache_part"


def frame_compressors(compression: str = DEFAULT_COMPRESSION) -> list:
    """The bytes-to-bytes codecs of every array: "lz4"/"zstd" (Blosc, level 1) or none, then crc32c."""
    from zarr.codecs import BloscCodec, Crc32cCodec

    codecs = (
        []
        if compression == "none"
        else [BloscCodec(cname=compression, clevel=1, shuffle="shuffle")]
    )
    return [*codecs, Crc32cCodec()]


def create_checked_array(group, name: str, *, compression: str = "none", **kwargs):
    """``group.create_array`` with the checksummed codec chain and every chunk written.

    Every array of a store is made here (frames, pooled means, index, int8 scales alike).
    """
    return group.create_array(
        name,
        compressors=frame_compressors(compression),
        config={"write_empty_chunks": True},
        **kwargs,
    )


def missing_chunks(folder, array) -> list[tuple[int, ...]]:
    """Chunk coordinates of ``array`` (stored in ``folder``) whose chunk file does not exist.

    One listing of ``folder`` (a walk of a local folder, one ``find`` on object storage), not
    one query per chunk: a part of a long corpus has thousands of chunks.
    """
    import itertools

    if is_remote(folder):
        root = folder.path + "/"
        present = {p[len(root) :] for p in folder.fs.find(folder.path) if p.startswith(root)}
    else:
        present = {
            os.path.relpath(os.path.join(top, f), folder).replace(os.sep, "/")
            for top, _, files in os.walk(folder)
            for f in files
        }
    grid = itertools.product(*(range(n) for n in array.cdata_shape))
    return [c for c in grid if array.metadata.encode_chunk_key(c) not in present]


class ZarrBackend(Backend):
    """Stores as Zarr v3 groups in a local folder or on object storage (an fsspec URL).

    Locally a part is written into the work folder and renamed into place. Object storage has
    no rename: there a part is written in place and its group metadata, written last, marks it
    complete (:class:`_MarkerPartSink`).
    """

    def create(self, path: Path, attrs: dict) -> None:
        import zarr

        group = zarr.create_group(store=_zstore(path), attributes={"featcache": attrs})
        group.create_group("parts")

    def read_attrs(self, path: Path) -> dict:
        return dict(_open(path, "r").attrs["featcache"])

    def mark_incomplete(self, path: Path) -> None:
        # the index arrays are rewritten one by one in finalize(): flag them untrustworthy first
        group = _open(path, "r+")
        group.attrs["featcache"] = {**group.attrs["featcache"], "complete": False}

    def begin_part(
        self, path: Path, k: int, shape_ld: tuple[int, int], dtype: str, compression: str
    ) -> PartSink:
        if is_remote(path):
            from featcache.store.zarr_remote import MarkerPartSink

            return MarkerPartSink(path, k, shape_ld, dtype, compression)
        return _ZarrPartSink(path, k, shape_ld, dtype, compression)

    def complete_parts(self, path: Path) -> dict[int, PartMeta]:
        import zarr

        out = {}
        parts = path / "parts"
        if is_remote(path):
            from featcache.store.zarr_remote import marked_parts

            return marked_parts(path)
        for p in parts.iterdir() if parts.is_dir() else ():
            if p.name.isdigit():
                attrs = zarr.open_group(str(p), mode="r").attrs
                out[int(p.name)] = PartMeta.from_json(attrs[PART_ATTR])
        return dict(sorted(out.items()))

    def read_part_pooled(self, path: Path, k: int) -> np.ndarray:
        import zarr

        return zarr.open_array(_zstore(path / "parts" / str(k) / "pooled"), mode="r")[...]

    def finalize(self, path: Path, attrs: dict, index: Index) -> None:
        group = _open(path, "r+")
        n, num_layers, dim = index.pooled.shape
        _put(group, "utt_id", np.array(index.utt_id, dtype=str), str)
        _put(group, "part", index.part.astype(np.int32))
        _put(group, "offset", index.offset.astype(np.int64))
        _put(group, "num_frames", index.num_frames.astype(np.int64))
        pooled = group.require_group("pooled")
        create_checked_array(
            pooled,
            "mean",
            shape=(n, num_layers, dim),
            chunks=(max(1, min(n, 256)), num_layers, max(1, dim)),
            dtype="float32",
            compression=attrs.get("compression", DEFAULT_COMPRESSION),
            overwrite=True,
        )[...] = index.pooled
        errors = group.require_group("errors")
        _put(errors, "utt_id", np.array(index.error_ids, dtype=str), str)
        _put(errors, "reason", np.array(index.error_reasons, dtype=str), str)
        group.attrs["featcache"] = attrs
        if is_remote(path):  # an object PUT is whole or absent: no partial files to sweep
            return
        for stray in path.glob("*/**/*.partial"):  # from a write killed mid-way (zarr's tmp files)
            if stray.relative_to(path).parts[0] != "parts":
                stray.unlink()

    def open_read(self, path: Path, chunk_cache: str | None = None):
        return ZarrHandle(path, chunk_cache)

    def drop_parts(self, path: Path, parts: list[int]) -> None:
        """Mark the store incomplete and remove ``parts`` (``featcache verify --repair``)."""
        self.mark_incomplete(path)
        for k in parts:
            remove_path(path / "parts" / str(k))


class ZarrHandle:
    """Read access to one Zarr store; frames through a local chunk cache if one is given."""

    def __init__(self, path: Path, chunk_cache: str | None = None):
        self.path = path
        self.group = _open(path, "r")
        self._frames: dict[int, object] = {}
        self._frames_group = self.group
        if chunk_cache is not None and is_remote(path):
            from featcache.store.zarr_remote import cached_group

            self._frames_group = cached_group(path, chunk_cache, self.attrs())
        self._scale: dict[int, object] = {}

    def attrs(self) -> dict:
        return dict(self.group.attrs["featcache"])

    def index(self) -> Index:
        g = self.group
        return Index(
            utt_id=[str(u) for u in g["utt_id"][:]],
            part=g["part"][:],
            offset=g["offset"][:],
            num_frames=g["num_frames"][:],
            pooled=None,  # read on demand by pooled()
            error_ids=[str(u) for u in g["errors/utt_id"][:]],
            error_reasons=[str(r) for r in g["errors/reason"][:]],
        )

    def frames(self, k: int):
        """``parts/<k>/frames`` as :class:`CheckedFrames`, once every chunk key is found."""
        if k not in self._frames:
            try:
                array = self._frames_group[f"parts/{k}/frames"]  # through the chunk cache if any
            except DECODE_ERRORS as e:
                raise damaged(self.path, f"part {k}", f"cannot open its frames: {e}") from e
            # through a local chunk cache the bucket may rightly lack chunks the cache holds:
            # the listing check is the bucket's alone (crc32c still checks every chunk read)
            cached = self._frames_group is not self.group
            gone = [] if cached else missing_chunks(self.path / "parts" / str(k) / "frames", array)
            if gone:
                rows = chunk_rows(gone[0], array.chunks[0], array.shape[0])
                key = array.metadata.encode_chunk_key(gone[0])
                raise damaged(self.path, f"part {k}, {rows}",
                              f"{len(gone)} chunk file(s) missing, e.g. frames/{key}")  # fmt: skip
            self._frames[k] = CheckedFrames(array, self.path, k)
        return self._frames[k]

    def scale(self, k: int):
        """``parts/<k>/scale`` of an int8 store."""
        if k not in self._scale:
            array = self.group[f"parts/{k}/scale"]
            if missing_chunks(self.path / "parts" / str(k) / "scale", array):
                raise damaged(self.path, f"part {k}", "scale chunk file(s) missing")
            self._scale[k] = CheckedFrames(array, self.path, k)
        return self._scale[k]

    def pooled(self) -> np.ndarray:
        return self.group["pooled/mean"][...]

    def part_numbers(self) -> list[int]:
        parts = self.path / "parts"
        found = parts.iterdir() if parts.is_dir() else ()
        return sorted(int(p.name) for p in found if p.name.isdigit())

    def part_meta(self, k: int) -> PartMeta:
        return PartMeta.from_json(self.group[f"parts/{k}"].attrs[PART_ATTR])

    def part_pooled(self, k: int, read: bool = False):
        """Part ``k``'s pooled means: the array (every chunk key checked), or its values."""
        array = self.group[f"parts/{k}/pooled"]
        if missing_chunks(self.path / "parts" / str(k) / "pooled", array):
            raise StoreError(f"parts/{k}/pooled: chunk file(s) missing")
        return array[...] if read else array

    def close(self) -> None:
        pass


class _ZarrPartSink(PartSink):
    """Writes part ``k`` under the store's work folder, then renames it into ``parts/<k>``."""

    def __init__(self, path: Path, k: int, shape_ld: tuple[int, int], dtype: str, compression):
        import zarr

        self.shape_ld = shape_ld
        self._compression = compression
        self._final = path / "parts" / str(k)
        self._tmp = work_dir(path) / tmp_name(k)
        self._tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._group = zarr.create_group(store=str(self._tmp))
            num_layers, dim = shape_ld
            self._frames = self._array("frames", (CHUNK_FRAMES, 1, max(1, dim)), dtype)
            # int8: one scale row per chunk of frames, all layers in one small chunk
            self._scale = None
            if dtype == "int8":
                self._scale = self._array("scale", (1, max(1, num_layers), max(1, dim)), "float32")
        except BaseException:
            remove_path(self._tmp)  # e.g. a full disk while creating the arrays
            raise

    def _array(self, name: str, chunks: tuple, dtype: str):
        """An empty, growable (0, L, D) array of the part, with the store's checksummed codecs."""
        return create_checked_array(
            self._group,
            name,
            shape=(0, *self.shape_ld),
            chunks=chunks,
            dtype=dtype,
            compression=self._compression,
        )

    def write(self, start: int, frames: np.ndarray, scale: np.ndarray | None = None) -> None:
        end = start + len(frames)
        self._frames.resize((end, *self.shape_ld))
        self._frames[start:end] = frames
        if self._scale is not None:
            row = start // CHUNK_FRAMES
            self._scale.resize((row + len(scale), *self.shape_ld))
            self._scale[row:] = scale

    def commit(self, meta: PartMeta, pooled: np.ndarray) -> None:
        import zarr

        n = len(pooled)
        create_checked_array(
            self._group,
            "pooled",
            shape=pooled.shape,
            chunks=(max(1, n), *pooled.shape[1:]),
            dtype="float32",
            compression=self._compression,
        )[...] = pooled
        self._group.attrs[PART_ATTR] = meta.to_json()
        if not (self._final.parent / "zarr.json").exists():  # create() was killed half-way
            zarr.open_group(str(self._final.parent.parent), mode="r+").require_group("parts")
        try:
            os.rename(self._tmp, self._final)  # a folder: renamed whole, then made durable
            fsync_dir(self._final.parent)
        except OSError:
            if not (self._final / "zarr.json").exists():
                raise
            remove_path(self._tmp)  # another process completed the same part first

    def abort(self) -> None:
        _drain_zarr_io()  # else chunk writes still in flight recreate the folder after removal
        remove_path(self._tmp)


def _zstore(path, read_only: bool = False):
    """What zarr opens: a local folder's name, or an fsspec store for a URL."""
    return path.zarr_store(read_only=read_only) if is_remote(path) else str(path)


def _drain_zarr_io(timeout: float = 60.0) -> None:
    """Wait for zarr's I/O tasks still running: when one chunk write of an array assignment
    fails (a full disk), zarr raises at once while the other chunk writes go on."""
    import asyncio

    from zarr.core.sync import sync

    async def drain():
        me = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if others:
            await asyncio.wait(others, timeout=timeout)

    sync(drain())


def _open(path: Path, mode: str):
    import zarr

    if not (path / "zarr.json").exists():
        raise StoreNotFoundError(f"{path}: no Zarr store here; run `featcache extract` first")
    try:
        return zarr.open_group(_zstore(path, read_only=mode == "r"), mode=mode)
    except Exception as e:  # a corrupt or foreign folder
        raise StoreError(f"{path}: cannot open as a Zarr v3 group ({e})") from e


def _put(group, name: str, values: np.ndarray, dtype=None) -> None:
    arr = create_checked_array(
        group,
        name,
        shape=values.shape,
        chunks=(max(1, min(len(values), 65536)),),
        dtype=dtype or values.dtype,
        overwrite=True,
    )
    if len(values):
        arr[...] = values
