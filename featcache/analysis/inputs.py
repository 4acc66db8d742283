"""Inputs of the analysis stage: labels and splits of the utterances a cache's stores share.

Readers come from :meth:`featcache.store.Cache.readers` (store name -> reader).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from featcache.errors import ConfigError

__all__ = ["load_manifest", "out_folder", "pooled_features", "resolve_task", "select_utterances"]


def out_folder(out) -> Path | None:
    """The output folder ``out``, created; None stays None (compute without writing)."""
    if out is None:
        return None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def load_manifest(readers: dict, manifest=None):
    """The manifest given with ``--manifest``, else the cache's copy."""
    from featcache.manifest import Manifest

    if manifest is not None:
        return Manifest.load(manifest)
    return next(iter(readers.values())).manifest()


def select_utterances(readers: dict, manifest, split: Sequence[str] = (), label: str | None = None):
    """Utterances every store holds, in the manifest, in ``split`` (if given), with ``label`` set.

    Returns
    -------
    ids : list of str
    labels : list or None
        One label per id when ``label`` is given.
    """
    from featcache.analysis.frames import shared_utterances

    where = f"cache {next(iter(readers.values())).path.parent}"
    if split:
        chosen = manifest.split(*split)
        if not len(chosen):
            have = sorted({u.split for u in manifest if u.split is not None})
            splits = f"its splits are {', '.join(have)}" if have else "it has no 'split' field"
            raise ConfigError(
                f"{where}: no utterance of the manifest is in --split {'/'.join(split)}; {splits}"
            )
        manifest = chosen
    ids = shared_utterances(list(readers.values()), manifest.ids())
    if not ids:
        cached = set().union(*(r.utterances for r in readers.values()))
        if not cached & set(manifest.ids()):
            raise ConfigError(
                f"{where}: none of the {len(manifest)} utterance ids of manifest {manifest.path} "
                f"(e.g. {manifest.ids()[0]!r}) is cached; --manifest must list the cached "
                "utterances' ids"
            )
        what = f" in split {'/'.join(split)}" if split else ""
        raise ConfigError(
            f"{where}: no utterance{what} is held by every store; check -u and --split"
        )
    if label is None:
        return ids, None
    values = [manifest[u].get(label) for u in ids]
    kept = [(u, v) for u, v in zip(ids, values, strict=True) if v is not None]
    if not kept:
        fields = ", ".join(["split", *manifest.fields()])
        raise ConfigError(
            f"{where}: no utterance has a value for --label {label!r}; fields: {fields}"
        )
    ids, labels = (list(x) for x in zip(*kept, strict=True))
    return ids, labels


def resolve_task(task: str, labels) -> str:
    """``auto``: regress for numeric labels with many distinct non-integer values, else classify."""
    from featcache.analysis.registry import PROBE_TASKS

    if PROBE_TASKS.get(task).name != "auto":
        return task
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels)
    if numeric and len(set(labels)) > 20 and any(float(v) != int(v) for v in labels):
        return "regress"
    return "classify"


def pooled_features(reader, ids: Sequence[str]) -> np.ndarray:
    """Pooled means of ``ids`` from one store, (N, L, D) float32."""
    rows = [reader.index(u) for u in ids]
    return reader.pooled()[rows]  # (N, L, D)
