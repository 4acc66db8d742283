"""Reading one layer store: :class:`CacheReader`.

A cache folder opens through :class:`featcache.store.cache.Cache`, and
:func:`featcache.store.open_cache` is the one-store shortcut. The reader holds only the small index
in memory and opens the store lazily, so it can be pickled into DataLoader workers and dask
workers; frames are read on demand.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from featcache.errors import StoreError
from featcache.store import format_of, get_backend, store_name_of
from featcache.store.base import CHUNK_FRAMES
from featcache.store.damage import DECODE_ERRORS, damaged, read_checked_attrs, read_checked_index
from featcache.store.location import as_location, is_remote

DASK_ROWS = 8 * CHUNK_FRAMES  # frames per dask chunk of layer(l)


class CacheReader:
    """One upstream's cached layers.

    Attributes
    ----------
    path : Path or RemoteDir
        A local store, or a Zarr store on object storage (read by whole chunks, each request
        for an utterance's frames fetching all its chunks concurrently).
    chunk_cache : str or None
        For a store on object storage: a local folder where each chunk read is kept (fsspec's
        ``simplecache``), so a second epoch reads from local disk. Frames only; the index and
        attrs are always read from the store. None for local stores.
    format : str
        "zarr" or "hdf5".
    name : str
        Store name (the upstream slug).
    attrs : dict
        The store's ``attrs["featcache"]``.
    utterances : list of str
        Ids with frames, in manifest order.
    num_frames : np.ndarray
        int64 [N], frames per utterance.
    num_layers : int
        L of the arrays returned (``len(layers)``).
    layers : list of int
        The model's layer indices kept in the store.
    hidden_size, frame_rate, sample_rate
        From the attrs.
    errors : dict
        Failed utterance id -> reason.
    """

    def __init__(self, path, chunk_cache: str | None = None):
        self.path = as_location(path)
        self.chunk_cache = str(chunk_cache) if chunk_cache and is_remote(self.path) else None
        self.format = format_of(self.path)
        if is_remote(self.path) and get_backend(self.format).single_file:
            raise StoreError(f"{self.path}: HDF5 stores are read from local files only; copy it")
        self.name = store_name_of(self.path)
        self._handle = None
        handle = self._open()
        self.attrs = read_checked_attrs(handle, self.path)
        if not self.attrs.get("complete"):
            raise StoreError(
                f"{self.path}: store is incomplete (extraction was interrupted or is running); "
                f"rerun the same `featcache extract` command to finish it"
            )
        index = read_checked_index(handle, self.path)
        self.utterances = index.utt_id
        self._row = {u: i for i, u in enumerate(self.utterances)}
        self._part = index.part
        self._offset = index.offset
        self.num_frames = index.num_frames
        self.errors = dict(zip(index.error_ids, index.error_reasons, strict=True))
        self.layers = list(self.attrs["layers"])
        self.num_layers = len(self.layers)
        self.hidden_size = int(self.attrs["hidden_size"])
        self.frame_rate = float(self.attrs["frame_rate"])
        self.sample_rate = int(self.attrs["sample_rate"])
        self.quantized = self.attrs["dtype"] == "int8"
        self.chunk_frames = int(self.attrs.get("chunk_frames", CHUNK_FRAMES))

    def __repr__(self):
        return (
            f"CacheReader({str(self.path)!r}, {len(self.utterances)} utterances, "
            f"L={self.num_layers}, D={self.hidden_size}, {self.attrs['dtype']})"
        )

    def __len__(self) -> int:
        return len(self.utterances)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handle"] = None
        return state

    def _open(self):
        if self._handle is not None and self._handle_pid != os.getpid():
            # inherited by fork (DataLoader workers): a URL store's async client belongs to the
            # parent's event loop, so open afresh (local files do not mind either way)
            self._handle = None
        if self._handle is None:
            self._handle_pid = os.getpid()
            backend = get_backend(self.format)
            if self.chunk_cache is None:
                self._handle = backend.open_read(self.path)
            else:
                self._handle = backend.open_read(self.path, chunk_cache=self.chunk_cache)
        return self._handle

    def index(self, utt_id: str) -> int:
        """Row of ``utt_id`` in ``utterances``; StoreError if it has no frames."""
        try:
            return self._row[utt_id]
        except KeyError:
            why = f"it failed: {self.errors[utt_id]}" if utt_id in self.errors else "not in it"
            raise StoreError(f"{self.path}: utterance {utt_id!r} has no frames ({why})") from None

    def get(self, utt_id: str, layers: list[int] | None = None, dtype=np.float32) -> np.ndarray:
        """Frames of one utterance, (T, L, D), float32 by default.

        Parameters
        ----------
        utt_id : str
        layers : list of int, optional
            Model layer indices (from ``self.layers``) to return; default all kept layers.
        dtype : numpy dtype or None
            Returned dtype; ``None`` keeps the stored one (float16 by default), which skips a
            cast that costs about half of a read (training loaders cast on the device instead).
            int8 stores are always dequantised: ``None`` gives float32 there.
        """
        part, start, count = self.location(utt_id)
        return self.read_frames(part, start, start + count, layers, dtype)  # (T, L, D)

    def location(self, utt_id: str) -> tuple[int, int, int]:
        """``(part, offset, num_frames)`` of ``utt_id``: its frames are rows
        ``offset : offset + num_frames`` of :meth:`read_frames` ``(part, ...)``."""
        i = self.index(utt_id)
        return int(self._part[i]), int(self._offset[i]), int(self.num_frames[i])

    def read_frames(
        self, part: int, start: int, stop: int, layers: list[int] | None = None, dtype=np.float32
    ) -> np.ndarray:
        """Rows ``start:stop`` of part ``part``, ``(stop - start, L, D)``, in one read.

        Every frame read of featcache goes through here (one utterance for :meth:`get`, a run
        of consecutive utterances for the training block loader), so a store whose frames need
        decoding (int8 stores are dequantised here) changes only this method.

        Parameters
        ----------
        part, start, stop : int
            Part and frame range inside it.
        layers : list of int, optional
            Model layer indices (from ``self.layers``); default all kept layers.
        dtype : numpy dtype or None
            Returned dtype; ``None`` keeps the stored one (see :meth:`get`; float32 for int8).
        """
        frames = self._part_frames(part)
        rows = slice(start, stop)
        cols = None if layers is None else [self._layer_pos(layer) for layer in layers]
        direct = None if self.quantized else self._direct_frames(part)
        if direct is not None:  # featcache's own Zarr layout, local: chunk files read directly
            try:
                picked = direct.read(start, stop, cols)  # (F, L', D)
            except DECODE_ERRORS as e:
                why = " ".join(f"{type(e).__name__}: {e}".split())[:200]
                raise damaged(self.path, f"part {part}, frames {start}-{stop - 1}", why) from e
            return picked if dtype is None else picked.astype(dtype, copy=False)
        if self.quantized:
            picked = self._dequantized(part, rows, cols)  # (F, L', D) float32
        elif cols is None:
            return np.asarray(frames[rows], dtype=dtype)  # (F, L, D)
        elif cols == list(range(cols[0], cols[-1] + 1)):
            picked = np.asarray(frames[rows, cols[0] : cols[-1] + 1])  # (F, L', D), one read
        else:
            picked = np.stack([frames[rows, c] for c in cols], axis=1)  # (F, L', D)
        return picked if dtype is None else picked.astype(dtype, copy=False)

    def _dequantized(self, k: int, rows: slice, cols: list[int] | None) -> np.ndarray:
        """Float32 frames ``rows`` (all layers, or layer positions ``cols``) of int8 part k."""
        from featcache.store.int8 import read_dequantized

        handle = self._open()
        frames, scale, chunk = handle.frames(k), handle.scale(k), self.chunk_frames
        if cols is None:
            return read_dequantized(frames, scale, rows, chunk)  # (T, L, D)
        picked = [read_dequantized(frames, scale, rows, chunk, (c,)) for c in cols]
        return np.stack(picked, axis=1)  # (T, L', D)

    def layer(self, layer: int):
        """One layer of every utterance, concatenated in ``utterances`` order: dask (sum T, D)."""
        import dask.array as da

        pos = self._layer_pos(layer)
        pieces = []
        for k, start, stop in self._runs():
            lazy = _LazyFrames(self.path, self.format, k, self._frames_shape(k), self.attrs)
            arr = da.from_array(
                lazy, chunks=(DASK_ROWS, 1, self.hidden_size), meta=np.empty((0, 0, 0), lazy.dtype)
            )
            pieces.append(arr[start:stop, pos, :])  # (T_run, D)
        if not pieces:
            return da.zeros((0, self.hidden_size), dtype=np.float32)
        return da.concatenate(pieces, axis=0).astype(np.float32)

    def pooled(self) -> np.ndarray:
        """Per-layer mean over frames of every utterance, (N, L, D) float32."""
        try:
            pooled = np.asarray(self._open().pooled(), dtype=np.float32)
        except DECODE_ERRORS as e:
            raise damaged(self.path, "pooled/mean", f"{type(e).__name__}: {e}") from e
        want = (len(self.utterances), self.num_layers, self.hidden_size)
        if pooled.shape != want:
            raise damaged(self.path, "pooled/mean", f"shape {pooled.shape}, attrs say {want}")
        return pooled

    def manifest(self):
        """The manifest the cache was built from (``manifest.jsonl`` beside the store)."""
        from featcache.store.cache import Cache

        return Cache(self.path.parent).manifest()

    def close(self) -> None:
        """Close the open file handle (the reader reopens on next use)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _layer_pos(self, layer: int) -> int:
        if layer not in self.layers:
            raise StoreError(
                f"{self.path}: layer {layer} is not in this store (kept layers: {self.layers})"
            )
        return self.layers.index(layer)

    def _runs(self) -> list[tuple[int, int, int]]:
        """(part, start, stop) frame ranges covering the utterances in order, merged when adjacent."""
        runs: list[list[int]] = []
        for k, off, n in zip(self._part, self._offset, self.num_frames, strict=True):
            k, off, n = int(k), int(off), int(n)
            if runs and runs[-1][0] == k and runs[-1][2] == off:
                runs[-1][2] = off + n
            else:
                runs.append([k, off, off + n])
        return [tuple(r) for r in runs]

    def _frames_shape(self, k: int) -> tuple[int, int, int]:
        return tuple(self._part_frames(k).shape)

    def _direct_frames(self, k: int):
        """Part ``k``'s :class:`~featcache.store.zarr_direct.DirectFrames` where the store is a
        local Zarr store in featcache's layout (else None: read through zarr)."""
        cache = self.__dict__.setdefault("_direct", {})
        if k not in cache:
            from featcache.store.zarr_direct import direct_frames

            local = self.format == "zarr" and not is_remote(self.path)
            direct = direct_frames(Path(self.path) / "parts" / str(k) / "frames") if local else None
            if direct is not None and direct.shape[1:] != (self.num_layers, self.hidden_size):
                direct = None  # _part_frames names the mismatch
            cache[k] = direct
        return cache[k]

    def _part_frames(self, k: int):
        """Part ``k``'s frames, after checking their (L, D) against the attrs."""
        frames = self._open().frames(k)
        if tuple(frames.shape[1:]) != (self.num_layers, self.hidden_size):
            raise damaged(
                self.path,
                f"part {k}",
                f"frames have (L, D) = {tuple(frames.shape[1:])} but the attrs say "
                f"{(self.num_layers, self.hidden_size)}",
            )
        return frames


class _LazyFrames:
    """A picklable array-like over ``parts/<k>/frames`` that opens the store on first read.

    Over an int8 part it reads float32 values (dequantised with ``parts/<k>/scale``).
    """

    def __init__(self, path: Path, format: str, k: int, shape: tuple, attrs: dict):
        self.path, self.format, self.k = path, format, k
        self.quantized = attrs["dtype"] == "int8"
        self.chunk = int(attrs.get("chunk_frames", CHUNK_FRAMES))
        dtype = np.float32 if self.quantized else attrs["dtype"]
        self.shape, self.dtype, self.ndim = shape, np.dtype(dtype), len(shape)
        self._handle = None

    def __getstate__(self):
        return {**self.__dict__, "_handle": None}

    def __getitem__(self, key):
        if self._handle is None:
            self._handle = get_backend(self.format).open_read(self.path)
        if not self.quantized:
            return self._handle.frames(self.k)[key]  # CheckedFrames: damage is a StoreError
        from featcache.store.int8 import read_dequantized

        key = key if isinstance(key, tuple) else (key,)
        frames, scale = self._handle.frames(self.k), self._handle.scale(self.k)
        return read_dequantized(frames, scale, key[0], self.chunk, key[1:] or None)
