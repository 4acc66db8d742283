"""Plain-text tables, as the CLI prints them: analyses, training runs and recipe results.

The one module for text tables; every function takes the result dicts the stages write.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["format_probe", "format_results", "format_select", "format_similarity",
           "results_line", "results_rows", "results_table", "similarity_highlights"]  # fmt: skip


def format_probe(summary: dict) -> str:
    """A compact table (layers x upstreams, mean +- std) and the best layer per upstream."""
    names = list(summary["results"])
    by_layer = {n: {r["layer"]: r for r in summary["results"][n]} for n in names}
    layers = sorted({layer for n in names for layer in by_layer[n]})
    width = max(13, *(len(n) for n in names))
    rows = f"{summary['n']} utterances"
    if summary["level"] == "frames":
        rows += f", {summary['rows']} frames, folds grouped by utterance"
    lines = [
        f"probe {summary['label']!r} ({summary['task']}, {summary['level']}, {rows}, "
        f"{summary['cv']}-fold CV): {summary['metric']} mean +- std"
    ]
    lines.append("layer  " + "  ".join(n.rjust(width) for n in names))
    for layer in layers:
        cells = []
        for n in names:
            r = by_layer[n].get(layer)
            cells.append(("" if r is None else f"{r['mean']:.3f} +- {r['std']:.3f}").rjust(width))
        lines.append(f"{layer:>5}  " + "  ".join(cells))
    if summary.get("chance") is not None:
        lines.append(f"(majority class alone scores {summary['chance']:.3f})")
    lines.append("best layer per upstream:")
    for n, b in summary["best"].items():
        lines.append(f"  {n}: layer {b['layer']} ({b['mean']:.3f} +- {b['std']:.3f})")
    return "\n".join(lines)


def similarity_highlights(result: dict) -> list[dict]:
    """Per pair of different upstreams: mean CKA and the most similar layer pair."""
    out = []
    for (a, b), m in result["matrices"].items():
        if a == b:
            continue
        i, j = np.unravel_index(np.nanargmax(m), m.shape)
        out.append(
            {
                "a": a,
                "b": b,
                "mean": float(np.nanmean(m)),
                "max": float(m[i, j]),
                "layers": [result["layers"][a][i], result["layers"][b][j]],
            }
        )
    return out


def format_similarity(result: dict) -> str:
    """One line per pair of upstreams."""
    lines = [f"linear CKA ({result['level']}, {result['n']} utterances)"]
    for p in similarity_highlights(result):
        lines.append(
            f"  {p['a']} vs {p['b']}: mean {p['mean']:.3f}; most similar layers "
            f"{p['layers'][0]} <-> {p['layers'][1]} ({p['max']:.3f})"
        )
    for (a, b), m in result["matrices"].items():
        if a == b and m.shape[0] > 1:
            adjacent = np.nanmean(np.diag(m, 1))
            lines.append(
                f"  {a} with itself: adjacent layers {adjacent:.3f}, first vs last {m[0, -1]:.3f}"
            )
    return "\n".join(lines)


def format_select(result: dict, top: int = 15) -> str:
    """The components table: per-upstream strength, best-layer CKA, then the ranked subsets."""
    m = result["metric"]
    lines = [f"upstream strength ({result['label']!r}, {result['task']}, best-layer probe {m}, "
             f"{result['n']} utterances):"]  # fmt: skip
    for n, u in sorted(result["upstreams"].items(), key=lambda kv: -kv[1]["strength"]):
        lines.append(f"  {n}: {u['strength']:.3f} (layer {u['best_layer']})")
    lines.append("similarity of best layers (linear CKA; complementarity = 1 - CKA):")
    for s in result["similarity"]:
        lines.append(f"  {s['a']} vs {s['b']}: {s['cka']:.3f}")
    lines.append(f"score = mean strength + {result['weight']:g} x mean complementarity")
    width = max(9, *(len(" + ".join(r["upstreams"])) for r in result["ranking"]))
    lines.append(f"{'rank':>4}  {'upstreams'.ljust(width)}  {'score':>6}  {'strength':>8}  "
                 f"{'compl.':>6}  best layers")  # fmt: skip
    for r in result["ranking"][:top]:
        lines.append(
            f"{r['rank']:>4}  {' + '.join(r['upstreams']).ljust(width)}  {r['score']:6.3f}  "
            f"{r['strength']:8.3f}  {r['complementarity']:6.3f}  {', '.join(map(str, r['best_layers']))}"
        )
    if len(result["ranking"]) > top:
        lines.append(f"  ... {len(result['ranking']) - top} more in selection.csv")
    v = result.get("validation")
    if v:
        lines.append(f"validation ({v['interface']} runs, dev {v['metric']}):")
        for r in v["runs"]:
            lines.append(f"  rank {r['rank']:>3}  {' + '.join(r['upstreams'])}: predicted "
                         f"{r['predicted']:.3f}, measured {r['measured']:.4f}")  # fmt: skip
        lines.append(spearman_line(v))
    return "\n".join(lines)


def spearman_line(validation: dict) -> str:
    """The rank correlation of a validation, or why there is none (fewer than 3 runs)."""
    rho = validation.get("spearman")
    if rho is None or rho != rho:
        return (f"Spearman rank correlation: not computed from {len(validation['runs'])} runs "
                "(two points always correlate +-1); use --validate 2 or more")  # fmt: skip
    return f"Spearman rank correlation (predicted vs measured): {rho:.3f}"


# ---- training runs and recipe results


def results_line(summary: dict[str, Any]) -> str:
    """One line: the run's interface, upstreams and dev/test metrics."""
    parts = [f"results: interface={summary['interface']}",
             f"upstreams={'+'.join(summary['upstreams'])}",
             f"task={summary['task']}:{summary['label']}"]  # fmt: skip
    for split, values in summary["metrics"].items():
        parts.append(" ".join(f"{split}_{k}={v:.4f}" for k, v in values.items()))
    parts.append(f"params={summary['params']['interface']}+{summary['params']['head']}")
    return " ".join(parts)


def results_table(summaries: list[dict[str, Any]], split: str = "test") -> str:
    """A plain-text table of several runs: interface, upstreams, task and ``split`` metrics."""
    metric_names = sorted({k for s in summaries for k in s["metrics"].get(split, {})})
    header = ["interface", "upstreams", "task", *[f"{split} {m}" for m in metric_names],
              "interface params"]  # fmt: skip
    rows = [
        [s["interface"], "+".join(s["upstreams"]), f"{s['task']}:{s['label']}",
         *[f"{s['metrics'].get(split, {}).get(m, float('nan')):.4f}" for m in metric_names],
         str(s["params"]["interface"])]
        for s in summaries
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]  # fmt: skip
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def results_rows(runs: list[dict]) -> list[dict]:
    """One row per training run: upstreams, interface, dev/test metrics, parameter counts."""
    rows = []
    for s in runs:
        metrics = s.get("metrics", {})
        rows.append(
            {
                "run": s["name"],
                "upstreams": "+".join(s.get("upstreams", [])),
                "interface": s.get("interface", ""),
                "label": s.get("label", ""),
                "dev": metrics.get("dev", {}),
                "test": metrics.get("test", {}),
                "params": s.get("params", {}),
            }
        )
    return rows


def format_results(runs: list[dict]) -> str:
    """A plain-text table of the runs' dev and test metrics."""
    rows = results_rows(runs)
    if not rows:
        return "(no training runs)"
    metric_names = [
        m
        for m in ("accuracy", "macro_f1", "wer", "cer")
        if any(m in r["test"] or m in r["dev"] for r in rows)
    ]
    header = (
        ["run", "upstreams", "interface"]
        + [f"dev {m}" for m in metric_names]
        + [f"test {m}" for m in metric_names]
        + ["interface params", "what it shows"]
    )
    table = [header]
    notes = comparisons(rows, metric_names[0])
    for r in rows:
        table.append(
            [r["run"], r["upstreams"], r["interface"]]
            + [_fmt(r["dev"].get(m)) for m in metric_names]
            + [_fmt(r["test"].get(m)) for m in metric_names]
            + [f"{r['params'].get('interface', '')}", notes.get(r["run"], "")]
        )
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def comparisons(rows: list[dict], metric: str) -> dict[str, str]:
    """What each run's score says, by the comparison that isolates one change.

    A single-model run with another interface than ``ws`` is compared with ``ws`` on the same
    upstream (the interface's effect); a multi-model run with the best single-model run of the
    same interface by dev score (``chconv``: ``hconv``, which it is on one model; any interface
    when there is none): what fusion adds over choosing the best model alone, the comparison the
    paper's claim rests on. Differences are in test ``metric``; the reference is chosen on dev.
    """
    lower = metric in ("wer", "cer")
    single = [r for r in rows if "+" not in r["upstreams"] and metric in r["dev"]]
    notes = {}
    for r in rows:
        if metric not in r["test"]:
            continue
        if "+" not in r["upstreams"]:
            ref = [s for s in single if s["upstreams"] == r["upstreams"] and s["interface"] == "ws"]
            if r["interface"] != "ws" and ref:
                notes[r["run"]] = _delta(r, ref[0], metric, f"{r['interface']} vs ws", lower)
            continue
        same = [s for s in single if s["interface"] == _single_form(r["interface"])]
        if same or single:
            best = (min if lower else max)(same or single, key=lambda s: s["dev"][metric])
            notes[r["run"]] = _delta(r, best, metric, "fusion vs best single", lower)
    return notes


def _single_form(interface: str) -> str:
    """The interface a fusion reduces to on one model (CHConv of one model is HConv)."""
    return "hconv" if interface == "chconv" else interface


def _delta(run: dict, ref: dict, metric: str, what: str, lower: bool) -> str:
    d = run["test"][metric] - ref["test"][metric]
    better = d < 0 if lower else d > 0
    verdict = "better" if better and abs(d) > 1e-9 else "worse" if abs(d) > 1e-9 else "same"
    return f"{what} ({ref['run']}): {d:+.4f} test {metric}, {verdict}"


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)
