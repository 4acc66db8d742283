"""The analysis stage: probe layers, compare models, select upstreams, write a report.

Each ``run_*`` function reads a cache folder, computes, writes its outputs to ``out`` and returns
what it computed; the CLI commands (``featcache probe|similarity|select|report``) only parse
options and print. Labels and splits come from the cache's manifest copy unless ``manifest``
overrides it (matched by utterance id).
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from featcache.analysis.inputs import (
    load_manifest,
    pooled_features,
    resolve_task,
    select_utterances,
)
from featcache.analysis.registry import LEVELS
from featcache.atomic import write_atomic
from featcache.errors import ConfigError
from featcache.store import Cache


def _out_dir(out) -> Path | None:
    if out is None:
        return None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


# ---------------------------------------------------------------------------- probe


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
) -> dict:
    """Cross-validated probe score of every layer of every upstream.

    Returns
    -------
    dict
        ``task``, ``label``, ``level``, ``metric``, ``n`` (utterances), ``rows`` (probed rows:
        utterances or frames), ``cv``, ``results`` {upstream: [{layer, mean, std, scores}]} with
        model layer indices, ``best`` {upstream: {layer, mean, std}}. Written to ``out`` as
        probe.json, probe.csv and probe.png.
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
    out = _out_dir(out)
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


def _write_probe(out: Path, summary: dict) -> None:
    from featcache.analysis.plots import probe_curves, save_png

    write_atomic(out / "probe.json", json.dumps(summary, indent=2))
    with open(out / "probe.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["upstream", "layer", "mean", "std", "metric", "folds", "rows"])
        for name, found in summary["results"].items():
            for r in found:
                w.writerow(
                    [
                        name,
                        r["layer"],
                        f"{r['mean']:.6f}",
                        f"{r['std']:.6f}",
                        r["metric"],
                        len(r["scores"]),
                        r["n"],
                    ]
                )
    title = f"{summary['label']}: {summary['metric']} per layer ({summary['level']}, {summary['cv']}-fold CV)"
    fig = probe_curves(summary["results"], summary["metric"], title=title, chance=summary["chance"])
    save_png(fig, out / "probe.png")


# ---------------------------------------------------------------------------- similarity


def run_similarity(
    cache,
    *,
    upstreams: Sequence[str] = (),
    level: str = "pooled",
    split: Sequence[str] = (),
    manifest=None,
    max_frames: int | None = 50000,
    seed: int = 0,
    include_self: bool = True,
    max_bytes: int | None = None,
    out=None,
    log=None,
) -> dict:
    """Linear CKA between every layer pair of every upstream pair, over their shared utterances.

    Returns
    -------
    dict
        ``level``, ``names``, ``layers`` {upstream: model layer indices}, ``n`` (utterances),
        ``rows`` {"a|b": rows compared}, ``matrices`` {(a, b): array (La, Lb)}. Written to ``out``
        as similarity.npz (``cka__A__B``, ``layers__A``), similarity.json and similarity.png.
    """
    from featcache.analysis.cka import DEFAULT_MAX_BYTES

    LEVELS.get(level)
    readers = Cache.open(cache).readers(upstreams)
    names = list(readers)
    ids, _ = select_utterances(readers, load_manifest(readers, manifest), split)
    budget = max_bytes or DEFAULT_MAX_BYTES
    pairs = list(
        itertools.combinations_with_replacement(names, 2)
        if include_self
        else itertools.combinations(names, 2)
    )
    if not pairs:
        raise ConfigError(
            f"cache {cache}: nothing to compare with --no-self and one upstream ({names[0]}); "
            "give two or more upstreams, or drop --no-self"
        )
    matrices, rows = {}, {}
    for a, b in pairs:
        ra, rb = readers[a], readers[b]
        started = time.perf_counter()
        if level == "pooled":
            matrices[(a, b)], rows[f"{a}|{b}"] = _pooled_cka(ra, rb, ids, budget)
        else:
            matrices[(a, b)], rows[f"{a}|{b}"] = _frames_cka(ra, rb, ids, max_frames, seed, budget)
        if log is not None and level != "pooled":  # frame-level pairs take a while
            log(f"  {a} vs {b}: {rows[f'{a}|{b}']} rows in {time.perf_counter() - started:.1f}s")
    result = {
        "level": level,
        "names": names,
        "layers": {n: [int(x) for x in readers[n].layers] for n in names},
        "n": len(ids),
        "rows": rows,
        "max_frames": max_frames if level == "frames" else None,
        "split": list(split),
        "matrices": matrices,
    }
    out = _out_dir(out)
    if out is not None:
        _write_similarity(out, result)
    return result


def _pooled_cka(ra, rb, ids, budget):
    from featcache.analysis.cka import cka_layers

    xa = pooled_features(ra, ids)  # (N, La, Da)
    xb = xa if ra is rb else pooled_features(rb, ids)  # (N, Lb, Db)

    def read(group):
        for start in range(0, len(ids), 1024):
            yield xa[start : start + 1024][:, group], xb[start : start + 1024]

    m = cka_layers(
        read, ra.num_layers, rb.num_layers, ra.hidden_size, rb.hidden_size, max_bytes=budget
    )
    return m, len(ids)


def _frames_cka(ra, rb, ids, max_frames, seed, budget):
    """Frame-level CKA: frames aligned in time as in training, streamed in chunks per layer group."""
    from featcache.analysis.cka import cka_layers, iter_row_chunks
    from featcache.analysis.frames import FramePlan

    same = ra is rb
    plan = FramePlan([ra] if same else [ra, rb], ids, max_frames=max_frames, seed=seed)

    def read(group):
        if same:
            pieces = ((f[:, group], f) for _, (f,) in plan.utterance_rows([None]))
        else:
            pieces = ((fa, fb) for _, (fa, fb) in plan.utterance_rows([group, None]))
        return iter_row_chunks(pieces)

    m = cka_layers(
        read, ra.num_layers, rb.num_layers, ra.hidden_size, rb.hidden_size, max_bytes=budget
    )
    return m, plan.num_rows


def _write_similarity(out: Path, result: dict) -> None:
    from featcache.analysis.plots import cka_grid, save_png
    from featcache.analysis.text import similarity_highlights

    arrays = {f"cka__{a}__{b}": m for (a, b), m in result["matrices"].items()}
    arrays.update({f"layers__{n}": np.asarray(v) for n, v in result["layers"].items()})
    arrays["names"] = np.asarray(result["names"])
    np.savez(out / "similarity.npz", **arrays)
    meta = {k: v for k, v in result.items() if k != "matrices"}
    meta["pairs"] = similarity_highlights(result)
    write_atomic(out / "similarity.json", json.dumps(meta, indent=2))
    title = f"linear CKA between layers ({result['level']}, {result['n']} utterances)"
    fig = cka_grid(result["names"], result["matrices"], result["layers"], title=title)
    save_png(fig, out / "similarity.png")


def load_similarity(folder) -> dict:
    """Read a similarity output folder back into :func:`run_similarity`'s result form."""
    folder = Path(folder)
    meta = json.loads((folder / "similarity.json").read_text())
    with np.load(folder / "similarity.npz") as z:
        matrices = {}
        for key in z.files:
            if key.startswith("cka__"):
                a, b = key[len("cka__") :].split("__", 1)
                matrices[(a, b)] = z[key]
    return {**meta, "matrices": matrices}


# ---------------------------------------------------------------------------- select

LOWER_IS_BETTER = ("wer", "cer", "eer", "mse", "mae", "rmse", "loss")


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
    interface: str = "hconv",
    train_options: dict | None = None,
    out=None,
    log=print,
) -> dict:
    """Rank upstream subsets by the score of :mod:`featcache.analysis.select`; optionally validate.

    With ``validate`` N > 0, trains a short fusion (``interface``, ``train_options`` passed to
    :class:`~featcache.train.config.TrainConfig`) for each of the N best and N worst subsets and
    reports the Spearman correlation between predicted score and measured dev score.

    Returns
    -------
    dict
        ``task``, ``label``, ``n``, ``weight``, ``upstreams`` {name: {best_layer, strength}},
        ``similarity`` [{a, b, cka}], ``ranking`` [SubsetScore dicts with ``rank``], and with
        validation ``validation`` {runs: [...], spearman, metric}. Written to ``out`` as
        selection.json and selection.csv.
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
    out = _out_dir(out)
    if validate:
        result["validation"] = validate_ranking(
            cache, ranking, validate, label=label, task=task, interface=interface,
            manifest=manifest, seed=seed, options=train_options or {},
            runs_dir=(out or Path(".")) / "validate", log=log,
        )  # fmt: skip
    if out is not None:
        write_atomic(out / "selection.json", json.dumps(result, indent=2))
        with open(out / "selection.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["rank", "upstreams", "score", "strength", "complementarity", "best_layers"])
            for r in ranking:
                w.writerow([r["rank"], "+".join(r["upstreams"]), f"{r['score']:.6f}",
                            f"{r['strength']:.6f}", f"{r['complementarity']:.6f}",
                            " ".join(map(str, r["best_layers"]))])  # fmt: skip
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
    sign = -1.0 if metric.lower() in LOWER_IS_BETTER else 1.0
    rho = spearman([r["predicted"] for r in runs], [sign * r["measured"] for r in runs])
    return {"metric": metric, "interface": interface, "runs": runs, "spearman": rho}


# ---------------------------------------------------------------------------- report


def run_report(
    cache,
    out,
    *,
    runs: Sequence = (),
    upstreams: Sequence[str] = (),
    probe=None,
    similarity=None,
    selection=None,
    label: str | None = None,
    manifest=None,
    log=print,
) -> Path:
    """Write the HTML report of a cache (and training runs) to the file ``out``.

    Probe results come from ``probe`` (a ``featcache probe --out`` folder), else are computed when
    ``label`` is given; similarity from ``similarity`` (a ``featcache similarity --out`` folder),
    else is computed at the pooled level (cheap).
    """
    from featcache.analysis.report import build_report, read_run
    from featcache.store.info import describe_cache

    # every folder given must exist before anything slow runs
    for folder, file, command in ((probe, "probe.json", "featcache probe"),
                                  (similarity, "similarity.json", "featcache similarity"),
                                  (selection, "selection.json", "featcache select")):  # fmt: skip
        if folder is not None:
            _need(Path(folder) / file, command)
    for r in runs:
        _need(Path(r), "featcache train")
    stores = describe_cache(cache)
    if upstreams:
        names = set(Cache.open(cache).readers(upstreams))
        stores = [s for s in stores if s["name"] in names]
    if probe is not None:
        probe_result = json.loads(_need(Path(probe) / "probe.json", "featcache probe").read_text())
    elif label is not None:
        log(f"probing {label!r} (pass --probe DIR to reuse `featcache probe` output)")
        probe_result = run_probe(cache, label, upstreams=upstreams, manifest=manifest)
    else:
        probe_result = None
    if similarity is not None:
        _need(Path(similarity) / "similarity.json", "featcache similarity")
        sim_result = load_similarity(similarity)
    else:
        log("computing pooled CKA (pass --similarity DIR to reuse `featcache similarity` output)")
        sim_result = run_similarity(cache, upstreams=upstreams, manifest=manifest)
    select_result = None
    if selection is not None:
        file = _need(Path(selection) / "selection.json", "featcache select")
        select_result = json.loads(file.read_text())
    run_info = [read_run(_need(Path(r), "featcache train")) for r in runs]
    page = build_report(cache=str(cache), stores=stores, probe=probe_result,
                        similarity=sim_result, runs=run_info,
                        selection=select_result)  # fmt: skip
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(out, page)


def _need(path: Path, command: str) -> Path:
    if not path.exists():
        raise ConfigError(f"{path} does not exist; give the output folder of `{command}`")
    return path
