"""HDF5 backend: ``CACHE/<slug>.h5``, one file any h5py reader opens (after ``import hdf5plugin``).

Same paths as the Zarr store. HDF5 has no safe concurrent writers, so each part is written to its
own file under ``CACHE/<slug>.h5.work/parts/<k>.h5`` (temporary name, then rename), and the driver
assembles the final file from the complete parts into a temporary file that replaces ``<slug>.h5``
in one rename. Chunk copies between files do not recompress. ``attrs["featcache"]`` is a JSON
string here (HDF5 attributes cannot hold nested dicts); ``json.loads`` it. Strings are UTF-8
variable-length (read them with ``dataset.asstr()[:]``).

Chunks ``(1024, 1, D)`` and Blosc lz4 (level 1, byte shuffle) via hdf5plugin by default, for the
reasons and measurements given in :mod:`featcache.store.zarr` (HDF5 read one layer 9.5 ms vs
44 ms with all-layer chunks, and full reads ~4x faster than Zarr on this machine).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from featcache.atomic import commit, replacing
from featcache.errors import StoreError, StoreNotFoundError
from featcache.store.base import (
    CHUNK_FRAMES,
    DEFAULT_COMPRESSION,
    Backend,
    Index,
    PartMeta,
    PartSink,
)
from featcache.store.damage import DECODE_ERRORS, CheckedFrames, damaged
from featcache.store.paths import remove_path, tmp_name, work_dir

PART_ATTR = "featcache_part"


def _h5py():
    import h5py
    import hdf5plugin  # noqa: F401  (registers the LZ4/zstd/blosc filters)

    return h5py


def _compression(name: str = DEFAULT_COMPRESSION) -> dict:
    """h5py dataset options for "lz4", "zstd" (Blosc, byte shuffle, level 1) or "none", always
    with the fletcher32 checksum filter (applied after compression, so it covers stored bytes)."""
    import hdf5plugin

    if name == "none":
        return {"fletcher32": True}
    blosc = hdf5plugin.Blosc(cname=name, clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE)
    return {**dict(blosc), "fletcher32": True}


# free bytes kept beyond what a write needs, for HDF5's metadata
SPACE_MARGIN = 4 * 2**20


def ensure_space(folder: Path, nbytes: int) -> None:
    """Raise ``ENOSPC`` before HDF5 would meet a full disk itself.

    When HDF5 runs out of space while flushing, h5py cannot close the file, and freeing it then
    crashes the process (a segmentation fault, measured with h5py 3.16): so every write of this
    backend checks the free space first (twice the bytes, plus :data:`SPACE_MARGIN`).
    """
    free = shutil.disk_usage(folder).free
    if free < 2 * nbytes + SPACE_MARGIN:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free} bytes free in {folder})")


def create_checked_dataset(group, name: str, data=None, *, compression: str = "none", **kwargs):
    """``group.create_dataset`` chunked, with the checksum filter: every dataset of a store is
    made here (frames, pooled means, index, int8 scales alike). Strings are fixed-length UTF-8
    (HDF5 cannot filter variable-length data); ``dataset.asstr()[:]`` reads them as ``str``.
    """
    if data is not None and data.dtype.kind in "OUS":
        encoded = [str(v).encode() for v in data.ravel()]
        width = max((len(b) for b in encoded), default=1) or 1
        dtype = _h5py().string_dtype("utf-8", width)
        data = np.array(encoded, dtype=dtype).reshape(data.shape)
    shape = kwargs.pop("shape", None) or data.shape
    if "chunks" not in kwargs:
        kwargs["chunks"] = tuple(max(1, min(n, 65536)) for n in shape) if shape else None
    kwargs.setdefault("maxshape", (None, *shape[1:]))
    return group.create_dataset(name, shape=shape, data=data, **_compression(compression), **kwargs)


class HDF5Backend(Backend):
    """Stores as single HDF5 files assembled from per-part files."""

    # never modified in place (a kill could corrupt the file): finalize() replaces it whole, and
    # until then its old index stays consistent with the parts it holds
    atomic_index = True
    single_file = True

    def create(self, path: Path, attrs: dict) -> None:
        h5py = _h5py()
        ensure_space(path.parent, 0)
        with replacing(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["featcache"] = json.dumps(attrs)
            f.create_group("parts")

    def read_attrs(self, path: Path) -> dict:
        with _open(path) as f:
            return json.loads(f.attrs["featcache"])

    def begin_part(
        self, path: Path, k: int, shape_ld: tuple[int, int], dtype: str, compression: str
    ) -> PartSink:
        return _HDF5PartSink(path, k, shape_ld, dtype, compression)

    def complete_parts(self, path: Path) -> dict[int, PartMeta]:
        out = {}
        if path.exists():
            with _open(path) as f:
                for k, group in f["parts"].items():
                    out[int(k)] = PartMeta.from_json(json.loads(group.attrs[PART_ATTR]))
        out.update(_work_parts_meta(path))
        return dict(sorted(out.items()))

    def read_part_pooled(self, path: Path, k: int) -> np.ndarray:
        h5py = _h5py()
        file = _work_part_files(path).get(k)
        if file is not None:
            with h5py.File(file, "r") as f:
                return f["pooled"][...]
        with _open(path) as f:
            return f[f"parts/{k}/pooled"][...]

    def finalize(self, path: Path, attrs: dict, index: Index) -> None:
        h5py = _h5py()
        work = work_dir(path)
        work.mkdir(parents=True, exist_ok=True)
        tmp = work / f"assemble-{uuid.uuid4().hex[:8]}.h5"
        new_parts = _work_part_files(path)
        old = path.stat().st_size if path.exists() else 0
        ensure_space(work, old + sum(f.stat().st_size for f in new_parts.values()))
        try:
            with h5py.File(tmp, "w") as dst, _open(path) as src:
                parts = dst.create_group("parts")
                for k in src["parts"]:
                    if int(k) not in new_parts:
                        src.copy(src["parts"][k], parts, name=k)
                for k, file in new_parts.items():
                    with h5py.File(file, "r") as part:
                        group = parts.create_group(str(k))
                        group.attrs[PART_ATTR] = part.attrs[PART_ATTR]
                        for name in ("frames", "scale", "pooled"):
                            if name in part:  # scale: int8 stores only
                                part.copy(part[name], group, name=name)
                _write_index(dst, index, attrs.get("compression", DEFAULT_COMPRESSION))
                dst.attrs["featcache"] = json.dumps(attrs)
            commit(tmp, path)
        finally:
            remove_path(tmp)  # a failed assembly (a full disk) leaves no temporary file

    def open_read(self, path: Path):
        return HDF5Handle(path)

    def drop_parts(self, path: Path, parts: list[int]) -> None:
        """Rewrite the store without ``parts`` and without its index, marked incomplete.

        The rewrite goes to a temporary file that replaces the store in one rename.
        """
        h5py = _h5py()
        ensure_space(path.parent, path.stat().st_size)
        with replacing(path) as tmp:
            with h5py.File(tmp, "w") as dst, _open(path) as src:
                group = dst.create_group("parts")
                for k in src["parts"]:
                    if int(k) not in parts:
                        src.copy(src["parts"][k], group, name=k)
                dst.attrs["featcache"] = json.dumps(
                    {**json.loads(src.attrs["featcache"]), "complete": False}
                )


class HDF5Handle:
    """Read access to one HDF5 store."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.file = _open(path)

    def attrs(self) -> dict:
        return json.loads(self.file.attrs["featcache"])

    def index(self) -> Index:
        f = self.file
        return Index(
            utt_id=list(f["utt_id"].asstr()[:]),
            part=f["part"][:],
            offset=f["offset"][:],
            num_frames=f["num_frames"][:],
            pooled=None,  # read on demand by pooled()
            error_ids=list(f["errors/utt_id"].asstr()[:]),
            error_reasons=list(f["errors/reason"].asstr()[:]),
        )

    def frames(self, k: int):
        """``parts/<k>/frames`` as :class:`CheckedFrames` (fletcher32 errors name the part)."""
        try:
            return CheckedFrames(self.file[f"parts/{k}/frames"], self.path, k)
        except DECODE_ERRORS as e:
            raise damaged(self.path, f"part {k}", f"cannot open its frames: {e}") from e

    def scale(self, k: int):
        """``parts/<k>/scale`` of an int8 store."""
        return CheckedFrames(self.file[f"parts/{k}/scale"], self.path, k)

    def pooled(self) -> np.ndarray:
        return self.file["pooled/mean"][...]

    def part_numbers(self) -> list[int]:
        return sorted(int(k) for k in self.file["parts"] if k.isdigit())

    def part_meta(self, k: int) -> PartMeta:
        return PartMeta.from_json(json.loads(self.file[f"parts/{k}"].attrs[PART_ATTR]))

    def part_pooled(self, k: int, read: bool = False):
        dataset = self.file[f"parts/{k}/pooled"]
        return dataset[...] if read else dataset

    def close(self) -> None:
        self.file.close()


class _HDF5PartSink(PartSink):
    """Writes part ``k`` to a temporary file, renamed to ``<slug>.h5.work/parts/<k>.h5``."""

    def __init__(self, path: Path, k: int, shape_ld: tuple[int, int], dtype: str, compression):
        h5py = _h5py()
        self.shape_ld = shape_ld
        parts = work_dir(path) / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        self._final = parts / f"{k}.h5"
        self._tmp = work_dir(path) / f"{tmp_name(k)}.h5"
        ensure_space(parts, 0)
        self._file = h5py.File(self._tmp, "w")
        num_layers, dim = shape_ld
        self._compression = compression
        try:
            self._frames = self._dataset("frames", (CHUNK_FRAMES, 1, max(1, dim)), dtype)
            # int8: one scale row per chunk of frames, all layers in one small chunk
            self._scale = None
            if dtype == "int8":
                self._scale = self._dataset(
                    "scale", (1, max(1, num_layers), max(1, dim)), "float32"
                )
        except BaseException:
            self.abort()  # e.g. a full disk while creating the datasets
            raise

    def _dataset(self, name: str, chunks: tuple, dtype: str):
        """An empty, growable (0, L, D) dataset of the part, with the store's checksummed filters."""
        return create_checked_dataset(
            self._file,
            name,
            shape=(0, *self.shape_ld),
            chunks=chunks,
            dtype=dtype,
            compression=self._compression,
        )

    def write(self, start: int, frames: np.ndarray, scale: np.ndarray | None = None) -> None:
        ensure_space(self._tmp.parent, frames.nbytes)
        end = start + len(frames)
        self._frames.resize(end, axis=0)
        self._frames[start:end] = frames
        if self._scale is not None:
            row = start // CHUNK_FRAMES
            self._scale.resize(row + len(scale), axis=0)
            self._scale[row:] = scale

    def commit(self, meta: PartMeta, pooled: np.ndarray) -> None:
        ensure_space(self._tmp.parent, pooled.size * 4)
        create_checked_dataset(self._file, "pooled", pooled.astype(np.float32))
        self._file.attrs[PART_ATTR] = json.dumps(meta.to_json())
        self._file.close()
        commit(self._tmp, self._final)

    def abort(self) -> None:
        try:
            if self._file.id.valid:
                self._file.close()  # may fail itself on a full disk (it flushes)
        except Exception:
            pass
        finally:
            remove_path(self._tmp)


def _write_index(f, index: Index, compression: str) -> None:
    create_checked_dataset(f, "utt_id", np.array(index.utt_id, dtype=object))
    create_checked_dataset(f, "part", index.part.astype(np.int32))
    create_checked_dataset(f, "offset", index.offset.astype(np.int64))
    create_checked_dataset(f, "num_frames", index.num_frames.astype(np.int64))
    n, num_layers, dim = index.pooled.shape
    create_checked_dataset(
        f,
        "pooled/mean",
        index.pooled.astype(np.float32),
        chunks=(max(1, min(n, 256)), max(1, num_layers), max(1, dim)),
        compression=compression,
    )
    create_checked_dataset(f, "errors/utt_id", np.array(index.error_ids, dtype=object))
    create_checked_dataset(f, "errors/reason", np.array(index.error_reasons, dtype=object))


def _work_part_files(path: Path) -> dict[int, Path]:
    parts = work_dir(path) / "parts"
    files = parts.glob("*.h5") if parts.is_dir() else ()
    return {int(p.stem): p for p in sorted(files) if p.stem.isdigit()}


def _work_parts_meta(path: Path) -> dict[int, PartMeta]:
    h5py = _h5py()
    out = {}
    for k, file in _work_part_files(path).items():
        with h5py.File(file, "r") as f:
            out[k] = PartMeta.from_json(json.loads(f.attrs[PART_ATTR]))
    return out


def _open(path: Path, mode: str = "r"):
    h5py = _h5py()
    if not Path(path).is_file():
        raise StoreNotFoundError(f"{path}: no HDF5 store here; run `featcache extract` first")
    try:
        return h5py.File(path, mode)
    except OSError as e:
        raise StoreError(f"{path}: cannot open as HDF5 ({e})") from e
