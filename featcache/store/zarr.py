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

Every array is made with a ``crc32c`` checksum and every chunk written
(:mod:`featcache.store.zarr_arrays`); a local part is written beside the store and renamed into
place (:mod:`featcache.store.zarr_part`); on object storage see :mod:`featcache.store.zarr_remote`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featcache.errors import StoreError
from featcache.store.base import DEFAULT_COMPRESSION, Backend, Index, PartMeta, PartSink
from featcache.store.damage import DECODE_ERRORS, CheckedFrames, chunk_rows, damaged
from featcache.store.location import is_remote
from featcache.store.paths import remove_path
from featcache.store.zarr_arrays import (
    PART_ATTR,
    create_checked_array,
    missing_chunks,
    open_group,
    put,
    zstore,
)
from featcache.store.zarr_part import ZarrPartSink


class ZarrBackend(Backend):
    """Stores as Zarr v3 groups in a local folder or on object storage (an fsspec URL).

    Locally a part is written into the work folder and renamed into place. Object storage has
    no rename: there a part is written in place and its group metadata, written last, marks it
    complete (:class:`_MarkerPartSink`).
    """

    def create(self, path: Path, attrs: dict) -> None:
        import zarr

        group = zarr.create_group(store=zstore(path), attributes={"featcache": attrs})
        group.create_group("parts")

    def read_attrs(self, path: Path) -> dict:
        return dict(open_group(path, "r").attrs["featcache"])

    def mark_incomplete(self, path: Path) -> None:
        # the index arrays are rewritten one by one in finalize(): flag them untrustworthy first
        group = open_group(path, "r+")
        group.attrs["featcache"] = {**group.attrs["featcache"], "complete": False}

    def begin_part(
        self, path: Path, k: int, shape_ld: tuple[int, int], dtype: str, compression: str
    ) -> PartSink:
        if is_remote(path):
            from featcache.store.zarr_remote import MarkerPartSink

            return MarkerPartSink(path, k, shape_ld, dtype, compression)
        return ZarrPartSink(path, k, shape_ld, dtype, compression)

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

        return zarr.open_array(zstore(path / "parts" / str(k) / "pooled"), mode="r")[...]

    def finalize(self, path: Path, attrs: dict, index: Index) -> None:
        group = open_group(path, "r+")
        n, num_layers, dim = index.pooled.shape
        put(group, "utt_id", np.array(index.utt_id, dtype=str), str)
        put(group, "part", index.part.astype(np.int32))
        put(group, "offset", index.offset.astype(np.int64))
        put(group, "num_frames", index.num_frames.astype(np.int64))
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
        put(errors, "utt_id", np.array(index.error_ids, dtype=str), str)
        put(errors, "reason", np.array(index.error_reasons, dtype=str), str)
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
        self.group = open_group(path, "r")
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
