"""The probe stage: cross-validated linear probes of every layer of every upstream.

``run_probe`` reads a cache folder, probes, and writes ``probe.csv``, ``probe.png`` and, last,
``probe.json`` (:data:`DONE`, the marker ``featcache run`` checks). Labels and splits come from
the cache's manifest copy unless ``manifest`` overrides it (matched by utterance id).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from featcache.analysis.inputs import (
    load_manifest,
    out_folder,
    pooled_features,
    resolve_task,
    select_utterances,
)
from featcache.analysis.registry import LEVELS
from featcache.atomic import write_atomic
from featcache.store import Cache

DONE = "probe.json"


class ProbeResult(TypedDict):
    """What :func:`run_probe` returns (and probe.json holds)."""

    task: str
    label: str
    level: str
    metric: str
    n: int  # utterances
    rows: int  # probed rows: utterances or frames
    cv: int
    split: list[str]
    chance: float | None  # majority-class rate (classification)
    results: dict[str, list[dict[str, Any]]]  # upstream -> [{layer, mean, std, scores, ...}]
    best: dict[str, dict[str, Any]]  # upstream -> {layer, mean, std, ...}


def run_probe(
    cache,
    label: str,
    *,
    upstreams: Sequence[str] = (),
    task: str = "auto",
    level: str = "pooled",
    split: Sequence[str] = (),
    manifest=None,
    cv: int = 5,
    max_frames: int | None = 20000,
    seed: int = 0,
    out=None,
) -> ProbeResult:
    """Cross-validated probe score of every layer of every upstream.

    Returns
    -------
    ProbeResult
        ``task``, ``label``, ``level``, ``metric``, ``n`` (utterances), ``rows`` (probed rows:
        utterances or frames), ``cv``, ``results`` {upstream: [{layer, mean, std, scores}]} with
        model layer indices, ``best`` {upstream: {layer, mean, std}}. Written to ``out`` as
        probe.csv, probe.png and, last (the stage's done marker), probe.json.
    """
    from featcache.analysis.probe import probe_layers

    LEVELS.get(level)
    readers = Cache.open(cache).readers(upstreams)
    ids, labels = select_utterances(readers, load_manifest(readers, manifest), split, label)
    task = resolve_task(task, labels)
    y = np.asarray(labels, dtype=float if task == "regress" else None)
    results, rows = {}, len(ids)
    for name, reader in readers.items():
        if level == "pooled":
            found = probe_layers(
                pooled_features(reader, ids), y, task=task, cv=cv, random_state=seed
            )
        else:
            found, rows = _probe_frames(reader, ids, y, task, cv, max_frames, seed)
        for r in found:
            r["layer"] = int(reader.layers[r["layer"]])  # position -> model layer index
        results[name] = found
    summary = {
        "task": task,
        "label": label,
        "level": level,
        "metric": next(iter(results.values()))[0]["metric"],
        "n": len(ids),
        "rows": rows,
        "cv": cv,
        "split": list(split),
        "chance": _majority_rate(y) if task == "classify" else None,
        "results": results,
        "best": {
            name: {k: v for k, v in max(found, key=lambda r: r["mean"]).items() if k != "scores"}
            for name, found in results.items()
        },
    }
    out = out_folder(out)
    if out is not None:
        _write_probe(out, summary)
    return summary


def _majority_rate(y) -> float:
    _, counts = np.unique(y, return_counts=True)
    return float(counts.max() / counts.sum())


def _probe_frames(reader, ids, y, task, cv, max_frames, seed):
    """Probe frames (utterance labels repeated per frame), one layer read at a time."""
    from featcache.analysis.frames import FramePlan
    from featcache.analysis.probe import probe_layers

    plan = FramePlan([reader], ids, max_frames=max_frames, seed=seed)  # rows follow ``ids``
    found = []
    for pos in range(reader.num_layers):
        parts, groups = [], []
        for i, (frames,) in plan.utterance_rows([[pos]]):
            parts.append(frames)  # (n, 1, D)
            groups.append(np.full(len(frames), i))
        X = np.concatenate(parts)  # (rows, 1, D)
        g = np.concatenate(groups)
        row = probe_layers(X, y[g], task=task, cv=cv, groups=g, random_state=seed)[0]
        found.append({**row, "layer": pos})
    return found, int(len(g))


def _write_probe(out: Path, summary: ProbeResult) -> None:
    from featcache.analysis.plots import probe_curves, save_png

    table = io.StringIO(newline="")
    w = csv.writer(table)
    w.writerow(["upstream", "layer", "mean", "std", "metric", "folds", "rows"])
    for name, found in summary["results"].items():
        for r in found:
            w.writerow([name, r["layer"], f"{r['mean']:.6f}", f"{r['std']:.6f}", r["metric"],
                        len(r["scores"]), r["n"]])  # fmt: skip
    write_atomic(out / "probe.csv", table.getvalue())
    title = f"{summary['label']}: {summary['metric']} per layer ({summary['level']}, {summary['cv']}-fold CV)"
    fig = probe_curves(summary["results"], summary["metric"], title=title, chance=summary["chance"])
    save_png(fig, out / "probe.png")
    write_atomic(out / DONE, json.dumps(summary, indent=2))  # last: marks the stage done
