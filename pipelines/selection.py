"""The selection stage: rank upstream subsets for a task before training fusions.

``run_select`` scores subsets by probe strength and complementarity
(:mod:`featcache.analysis.select`), optionally checks the ranking with short fusion runs, and
writes ``selection.csv`` and, last, ``selection.json`` (:data:`DONE`, the marker ``featcache run``
checks).
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
from featcache.atomic import write_atomic
from featcache.errors import ConfigError
from featcache.store import Cache
from featcache.train.config import DEFAULT_INTERFACE

DONE = "selection.json"
MIN_RANK_POINTS = 3  # fewest validation runs whose rank correlation means something


class SelectionResult(TypedDict, total=False):
    """What :func:`run_select` returns (and selection.json holds)."""

    task: str
    label: str
    n: int
    cv: int
    weight: float
    metric: str
    upstreams: dict[str, dict[str, Any]]  # name -> {best_layer, strength}
    similarity: list[dict[str, Any]]  # [{a, b, cka}]
    ranking: list[dict[str, Any]]  # SubsetScore dicts with rank and best_layers
    validation: dict[str, Any]  # {metric, interface, runs, spearman}, with --validate


def run_select(
    cache,
    label: str,
    *,
    upstreams: Sequence[str] = (),
    task: str = "auto",
    max_models: int = 2,
    weight: float | None = None,
    split: Sequence[str] = (),
    manifest=None,
    cv: int = 5,
    seed: int = 0,
    validate: int = 0,
    interface: str | None = None,
    train_options: dict | None = None,
    out=None,
    log=print,
) -> SelectionResult:
    """Rank upstream subsets by the score of :mod:`featcache.analysis.select`; optionally validate.

    With ``validate`` N > 0, trains a short fusion (``interface``, ``train_options`` passed to
    :class:`~featcache.train.config.TrainConfig`) for each of the N best and N worst subsets and
    reports the Spearman correlation between predicted score and measured dev score.

    Returns
    -------
    SelectionResult
        ``task``, ``label``, ``n``, ``weight``, ``upstreams`` {name: {best_layer, strength}},
        ``similarity`` [{a, b, cka}], ``ranking`` [SubsetScore dicts with ``rank``], and with
        validation ``validation`` {runs: [...], spearman, metric}. Written to ``out`` as
        selection.csv and, last (the stage's done marker), selection.json.
    """
    from featcache.analysis.select import DEFAULT_WEIGHT, UpstreamSelector

    weight = DEFAULT_WEIGHT if weight is None else weight
    readers = Cache.open(cache).readers(upstreams)
    if len(readers) < 2:
        raise ConfigError(f"{cache}: selection needs at least two upstreams; found {list(readers)}")
    ids, labels = select_utterances(readers, load_manifest(readers, manifest), split, label)
    task = resolve_task(task, labels)
    y = np.asarray(labels, dtype=float if task == "regress" else None)
    features = {name: pooled_features(r, ids) for name, r in readers.items()}
    selector = UpstreamSelector(
        task=task, max_models=max_models, weight=weight, cv=cv, random_state=seed
    )
    selector.fit(features, y)
    model_layer = {n: int(readers[n].layers[p]) for n, p in selector.best_layers_.items()}
    ranking = []
    for rank, r in enumerate(selector.ranking_, start=1):
        row = r.to_dict()
        row["best_layers"] = [model_layer[u] for u in r.upstreams]
        ranking.append({"rank": rank, **row})
    result = {
        "task": task,
        "label": label,
        "n": len(ids),
        "cv": cv,
        "weight": weight,
        "metric": selector.probe_scores_[next(iter(readers))][0]["metric"],
        "upstreams": {
            n: {"best_layer": model_layer[n], "strength": selector.strength_[n]} for n in readers
        },
        "similarity": [{"a": a, "b": b, "cka": v} for (a, b), v in selector.similarity_.items()],
        "ranking": ranking,
    }
    out = out_folder(out)
    if validate:
        result["validation"] = validate_ranking(
            cache, ranking, validate, label=label, task=task,
            interface=interface or DEFAULT_INTERFACE,
            manifest=manifest, seed=seed, options=train_options or {},
            runs_dir=(out or Path(".")) / "validate", log=log,
        )  # fmt: skip
    if out is not None:
        table = io.StringIO(newline="")
        w = csv.writer(table)
        w.writerow(["rank", "upstreams", "score", "strength", "complementarity", "best_layers"])
        for r in ranking:
            w.writerow([r["rank"], "+".join(r["upstreams"]), f"{r['score']:.6f}",
                        f"{r['strength']:.6f}", f"{r['complementarity']:.6f}",
                        " ".join(map(str, r["best_layers"]))])  # fmt: skip
        write_atomic(out / "selection.csv", table.getvalue())
        write_atomic(out / DONE, json.dumps(result, indent=2))  # last: marks the stage done
    return result


def validation_subsets(ranking: list[dict], n: int) -> list[dict]:
    """The ``n`` best and ``n`` worst subsets (all of them when there are at most 2n)."""
    if len(ranking) <= 2 * n:
        return list(ranking)
    return ranking[:n] + ranking[-n:]


def validate_ranking(
    cache, ranking, n, *, label, task, interface, manifest, seed, options, runs_dir, log
):
    """Train a short fusion per chosen subset; Spearman between predicted and measured dev scores."""
    from featcache.analysis.select import spearman
    from featcache.heads.registry import TASKS
    from featcache.pipelines.train import train
    from featcache.train.config import TrainConfig

    runs = []
    for row in validation_subsets(ranking, n):
        name = "+".join(row["upstreams"])
        config = TrainConfig(**{
            "epochs": 3, "max_steps": 200, "patience": 3, "num_workers": 0, "seed": seed,
            **options, "cache": str(cache), "out": str(Path(runs_dir) / name.replace("/", "_")),
            "upstreams": list(row["upstreams"]), "task": task, "label": label,
            "interface": interface, "manifest": None if manifest is None else str(manifest),
        })  # fmt: skip
        log(f"validate: training {interface} on {name} ({config.out})")
        summary = train(config, log=lambda line: None)
        metric = summary["main_metric"]
        measured = float(summary["metrics"]["dev"][metric])
        runs.append({"upstreams": row["upstreams"], "rank": row["rank"], "predicted": row["score"],
                     "measured": measured, "metric": metric, "run": config.out})  # fmt: skip
    metric = runs[0]["metric"]
    sign = 1.0 if TASKS.get(task).load().higher_is_better else -1.0
    rho = None  # two points always correlate +-1: no evidence either way
    if len(runs) >= MIN_RANK_POINTS:
        rho = spearman([r["predicted"] for r in runs], [sign * r["measured"] for r in runs])
    return {"metric": metric, "interface": interface, "runs": runs, "spearman": rho}
