"""Building one store: the part plan, resuming, appending, and the index written last.

:class:`StoreBuilder` is the driver's view of one store. The plan (part k -> utterance ids) is a
function of the manifest alone (consecutive runs of ``part_size`` utterances in manifest order), is
saved before any part is computed and reused on resume, so a crashed run finishes with the same
parts, in the same places, as an uninterrupted one. Utterances added to a manifest later go into
new parts after the existing ones. Workers call :func:`open_part` to write one part each.
Whether a store is built, resumed, appended to or rebuilt is decided by
:meth:`featcache.store.cache.Cache.builder`.
"""

from __future__ import annotations

import datetime as _dt
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from featcache.errors import StoreError
from featcache.store import get_backend
from featcache.store.base import CHUNK_FRAMES, DEFAULT_COMPRESSION, FORMAT_VERSION, Index
from featcache.store.location import as_location, write_file
from featcache.store.paths import has_work, remove_path, store_exists, work_dir
from featcache.store.writer import PartWriter

DEFAULT_PART_SIZE = 32

# attrs that must match for new parts to join an existing store
_COMPATIBLE = (
    "format_version",
    "upstream",
    "sample_rate",
    "frame_rate",
    "hidden_size",
    "layers",
    "dtype",
    "chunk_frames",
)


def make_attrs(
    *,
    provenance: dict,
    sample_rate: int,
    frame_rate: float,
    model_num_layers: int,
    hidden_size: int,
    layers: list[int],
    dtype: str,
    manifest_sha256: str,
    policy: dict,
    compression: str = DEFAULT_COMPRESSION,
) -> dict:
    """The ``attrs["featcache"]`` dict of a new store (see DESIGN.md, "The layer cache").

    ``num_layers`` is the L axis of the stored arrays (``len(layers)``); ``model_num_layers`` is
    the upstream's own count of hidden states.
    """
    from featcache import __version__

    keys = ("name", "source", "revision", "architecture", "config_sha256")
    upstream = {k: provenance.get(k) for k in keys}
    upstream.update(json.loads(json.dumps(provenance, default=str)))  # extras, JSON-safe
    return {
        "format_version": FORMAT_VERSION,
        "upstream": upstream,
        "sample_rate": int(sample_rate),
        "frame_rate": float(frame_rate),
        "num_layers": len(layers),
        "model_num_layers": int(model_num_layers),
        "hidden_size": int(hidden_size),
        "layers": [int(i) for i in layers],
        "dtype": dtype,
        "chunk_frames": CHUNK_FRAMES,  # C of int8 stores' scale rows (frames per chunk)
        "compression": compression,
        "manifest_sha256": manifest_sha256,
        "policy": dict(policy),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
        "featcache_version": __version__,
        "complete": False,
    }


class StoreBuilder:
    """Create or resume one store and track which parts remain.

    Parameters
    ----------
    path : Path or RemoteDir
        The store (``CACHE/<slug>.zarr`` or ``.h5``; a Zarr store may be on object storage).
    format : str
        "zarr" or "hdf5".
    attrs : dict
        From :func:`make_attrs`; an existing store must agree on the fields that shape its arrays.
    ids : list of str
        The manifest's utterance ids, in order.
    part_size : int
        Utterances per new part.
    """

    def __init__(self, path: Path, format: str, attrs: dict, ids: list[str], part_size: int):
        self.path = as_location(path)
        self.format = format
        self.backend = get_backend(format)
        self.ids = list(ids)
        self.attrs = attrs
        if store_exists(self.path):
            self._check_compatible(self.backend.read_attrs(self.path))
        self.plan = self._make_plan(part_size)
        if not store_exists(self.path):
            self.backend.create(self.path, attrs)
        elif self.missing_parts() and not self.backend.atomic_index:
            self.backend.mark_incomplete(self.path)

    def missing_parts(self) -> list[int]:
        """Parts of the plan not yet complete, in order."""
        done = self.backend.complete_parts(self.path)
        return [k for k in self.plan if k not in done]

    def is_complete(self) -> bool:
        """True when the store's index is written and covers the whole manifest."""
        attrs = self.backend.read_attrs(self.path)
        return bool(attrs.get("complete")) and not has_work(self.path)

    def finalize(self) -> dict:
        """Write the index from the complete parts, mark the store complete, drop the work folder.

        Returns
        -------
        dict
            ``num_utterances``, ``num_failed`` and ``errors`` (id -> reason, manifest order).
        """
        done = self.backend.complete_parts(self.path)
        missing = [k for k in self.plan if k not in done]
        if missing:
            raise StoreError(f"{self.path}: parts {missing} are not complete; rerun extract")
        where, reasons = {}, {}
        for k, meta in done.items():
            offsets = np.concatenate([[0], np.cumsum(meta.num_frames)])
            for i, (u, n) in enumerate(zip(meta.utt_ids, meta.num_frames, strict=True)):
                where[u] = (k, int(offsets[i]), int(n), i)
            reasons.update(meta.errors)
        ok = [u for u in self.ids if u in where]
        failed = [u for u in self.ids if u in reasons and u not in where]
        pooled = self._gather_pooled(ok, where)  # (N, L, D)
        index = Index(
            utt_id=ok,
            part=np.array([where[u][0] for u in ok], dtype=np.int32),
            offset=np.array([where[u][1] for u in ok], dtype=np.int64),
            num_frames=np.array([where[u][2] for u in ok], dtype=np.int64),
            pooled=pooled,
            error_ids=failed,
            error_reasons=[reasons[u] for u in failed],
        )
        attrs = {
            **self.attrs,
            "complete": True,
            "num_utterances": len(ok),
            "num_failed": len(failed),
        }
        old = self.backend.read_attrs(self.path)
        attrs["created"] = old.get("created", attrs["created"])
        self.backend.finalize(self.path, attrs, index)
        remove_path(work_dir(self.path))
        return {
            "num_utterances": len(ok),
            "num_failed": len(failed),
            "errors": dict(zip(failed, index.error_reasons, strict=True)),
        }

    def _gather_pooled(self, ok: list[str], where: dict) -> np.ndarray:
        num_layers, dim = self.attrs["num_layers"], self.attrs["hidden_size"]
        out = np.zeros((len(ok), num_layers, dim), np.float32)
        by_part: dict[int, list[tuple[int, int]]] = {}
        for row, u in enumerate(ok):
            by_part.setdefault(where[u][0], []).append((row, where[u][3]))
        for k, rows in by_part.items():
            part = self.backend.read_part_pooled(self.path, k)  # (n_k, L, D)
            out[[r for r, _ in rows]] = part[[i for _, i in rows]]
        return out

    def _check_compatible(self, old: dict) -> None:
        why = incompatibility(old, self.attrs)
        if why:
            raise StoreError(
                f"{self.path}: existing store {why}; use --overwrite to rebuild it or a new "
                f"--cache folder"
            )

    def _make_plan(self, part_size: int) -> dict[int, list[str]]:
        plan_file = work_dir(self.path) / "plan.json"
        if plan_file.exists():
            plan = {int(k): v for k, v in json.loads(plan_file.read_text())["parts"].items()}
        elif store_exists(self.path):
            done = self.backend.complete_parts(self.path)
            plan = {k: m.utt_ids + sorted(m.errors) for k, m in done.items()}
        else:
            plan = {}
        covered = {u for ids in plan.values() for u in ids}
        gone = [u for u in covered if u not in set(self.ids)]
        if gone:
            raise StoreError(
                f"{self.path}: holds {len(gone)} utterance(s) the manifest no longer has "
                f"(e.g. {sorted(gone)[0]!r}); use --overwrite to rebuild it or a new --cache folder"
            )
        new = [u for u in self.ids if u not in covered]
        first = max(plan, default=-1) + 1
        for j in range(0, len(new), part_size):
            plan[first + j // part_size] = new[j : j + part_size]
        if new:
            plan_file.parent.mkdir(parents=True, exist_ok=True)
            write_file(
                plan_file, json.dumps({"part_size": part_size, "parts": plan}, sort_keys=True)
            )
        return plan


def incompatibility(old: dict, new: dict) -> str | None:
    """Why a store with attrs ``old`` cannot take parts computed with attrs ``new`` (or None)."""
    for key in _COMPATIBLE:
        if key == "upstream":
            a = {k: old.get(key, {}).get(k) for k in ("source", "config_sha256")}
            b = {k: new[key].get(k) for k in ("source", "config_sha256")}
        elif key == "chunk_frames":  # stores from before it was recorded used 1024
            a, b = old.get(key, 1024), new.get(key, 1024)
        else:
            a, b = old.get(key), new.get(key)
        if a != b:
            return f"has {key}={a!r} but this run asks for {b!r}"
    return None


def open_part(
    path: Path, format: str, k: int, attrs: dict, executor: ThreadPoolExecutor
) -> PartWriter:
    """Start writing part ``k`` of the store at ``path`` (one process per part).

    Parameters
    ----------
    path : Path
        The store.
    format : str
        "zarr" or "hdf5".
    k : int
        Part number from the builder's plan.
    attrs : dict
        The store's attrs (for layers, dtype, hidden size).
    executor : ThreadPoolExecutor
        One-thread executor that does the writing, overlapping the caller's computation.
    """
    backend = get_backend(format)
    shape_ld = (attrs["num_layers"], attrs["hidden_size"])
    compression = attrs.get("compression", DEFAULT_COMPRESSION)
    sink = backend.begin_part(as_location(path), k, shape_ld, attrs["dtype"], compression)
    return PartWriter(sink, attrs["layers"], attrs["dtype"], executor)
