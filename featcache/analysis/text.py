"""Plain-text tables of analysis results, as the CLI prints them."""

from __future__ import annotations

import numpy as np

__all__ = ["format_probe", "format_select", "format_similarity", "similarity_highlights"]


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
