"""Figures of the analysis stage, drawn with matplotlib's Agg renderer (no display needed).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global state,
safe in threads and notebooks); :func:`png_bytes` and :func:`save_png` render it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "cka_grid",
    "layer_contribution",
    "layer_weights",
    "png_bytes",
    "probe_curves",
    "save_png",
    "training_curves",
]

DPI = 110
# the range each metric can take, for clipping bands and fixing axes
METRIC_RANGES = {"accuracy": (0.0, 1.0), "macro_f1": (0.0, 1.0), "f1": (0.0, 1.0),
                 "wer": (0.0, np.inf), "cer": (0.0, np.inf), "eer": (0.0, 1.0)}  # fmt: skip


def _figure(width, height):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def save_png(fig, path) -> Path:
    """Write the figure as a PNG file (atomically)."""
    from featcache.atomic import write_atomic

    return write_atomic(Path(path), png_bytes(fig))


def probe_curves(
    results: Mapping[str, Sequence[dict]], metric: str = "accuracy", title="", chance=None
):
    """Probe score per layer, one line per upstream, a band of +-1 std over folds, best layer starred.

    ``results[upstream]`` is a list of rows with ``layer`` (model layer index), ``mean`` and ``std``.
    ``chance`` draws a dashed line (e.g. the majority-class rate). The band is clipped to the
    metric's range (accuracy and F1 lie in [0, 1]; a mean of 0.98 +- 0.04 does not reach 1.02).
    """
    limits = METRIC_RANGES.get(metric, (-np.inf, np.inf))
    fig = _figure(7.5, 4.2)
    ax = fig.add_subplot()
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=0.9, label="majority class")
    for name, rows in results.items():
        x = np.array([r["layer"] for r in rows])
        m = np.array([r["mean"] for r in rows])
        s = np.array([r["std"] for r in rows])
        (line,) = ax.plot(x, m, marker="o", markersize=3.5, label=name)
        low, high = np.clip(m - s, *limits), np.clip(m + s, *limits)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        best = int(np.argmax(m))
        ax.plot(x[best], m[best], marker="*", markersize=13, color=line.get_color(), zorder=5)
    ax.set_xlabel("layer")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or f"probe {metric} per layer (mean +- std over folds; star = best layer)")
    return fig


def cka_grid(
    names: Sequence[str],
    matrices: Mapping[tuple[str, str], np.ndarray],
    layers: Mapping[str, Sequence[int]],
    title: str = "linear CKA between layers",
):
    """One heat map per pair of upstreams (rows: first upstream's layers, columns: second's).

    Panel sides are proportional to layer counts (at least a third of the largest), so a
    one-layer baseline such as fbank gets a thin strip rather than a big uniform square.
    """
    n = len(names)
    counts = np.array([len(layers[name]) for name in names], dtype=float)
    ratios = np.maximum(counts, counts.max() / 3)
    side = (2.6 if n > 2 else 3.4) * n * ratios / ratios.sum()  # inches per panel
    fig = _figure(side.sum() + 1.6, side.sum() + 0.8)
    axes = fig.subplots(
        n, n, squeeze=False, gridspec_kw={"width_ratios": ratios, "height_ratios": ratios[::-1]}
    )
    axes = axes[::-1]  # first upstream at the bottom, like the layer axes
    image = None
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            ax = axes[i][j]
            m = matrices.get((a, b))
            if m is None and (b, a) in matrices:
                m = np.asarray(matrices[(b, a)]).T
            if m is None:
                ax.set_axis_off()
                continue
            image = ax.imshow(m, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
            _annotate(ax, np.asarray(m, dtype=float))
            _layer_ticks(ax.set_yticks, ax.set_yticklabels, layers[a])
            _layer_ticks(ax.set_xticks, ax.set_xticklabels, layers[b])
            ax.tick_params(labelsize=7)
            if j == 0:
                ax.set_ylabel(f"{_short(a)}\nlayer", fontsize=8)
            if i == 0:
                ax.set_xlabel(f"{_short(b)} layer", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="CKA")
    fig.suptitle(title)
    return fig


def _annotate(ax, m: np.ndarray, most_cells: int = 400) -> None:
    """Write each cell's value in it (2 decimals) where the panel has few enough cells."""
    if m.size > most_cells:
        return
    size = 7 if max(m.shape) <= 6 else 5 if max(m.shape) <= 13 else 4
    for (r, c), v in np.ndenumerate(m):
        if np.isfinite(v):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=size,
                    color="black" if v > 0.6 else "white")  # fmt: skip


def _layer_ticks(set_ticks, set_labels, layer_ids):
    step = max(1, int(np.ceil(len(layer_ids) / 7)))
    pos = list(range(0, len(layer_ids), step))
    set_ticks(pos)
    set_labels([str(layer_ids[p]) for p in pos])


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else name[: width - 1] + "~"


def layer_weights(
    weights: Mapping[str, Sequence[float]],
    layers: Mapping[str, Sequence[int]] | None = None,
    title: str = "learned layer weights",
):
    """Bars of a ``ws`` run's softmax layer weights, one panel per upstream.

    ``layers[upstream]`` gives the model layer index of each weight (default 0, 1, ...).
    """
    n = len(weights)
    fig = _figure(7.5, 1.0 + 2.0 * n)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, (name, w) in zip(axes, weights.items(), strict=True):
        w = np.asarray(w, dtype=float)
        ids = list((layers or {}).get(name) or range(len(w)))
        if len(ids) != len(w):
            ids = list(range(len(w)))
        ax.bar(np.arange(len(w)), w, color="tab:blue")
        _layer_ticks(ax.set_xticks, ax.set_xticklabels, ids)
        ax.set_ylim(0, max(w.max(), 1 / len(w)) * 1.25)
        ax.axhline(1 / len(w), color="grey", linestyle="--", linewidth=0.8, label="uniform")
        ax.set_ylabel("weight")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("layer")
    fig.suptitle(title)
    return fig


def layer_contribution(contribution: Mapping, title: str = "layer contribution"):
    """Bars of the dev-score drop when one input layer is zeroed, one panel per upstream.

    ``contribution`` is a ``featcache.pipelines.contribution.layer_contribution`` result.
    """
    layers = contribution["layers"]
    n = len(layers)
    fig = _figure(7.5, 1.0 + 2.0 * n)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    drops = [r["drop"] for rows in layers.values() for r in rows]
    low, high = min(0.0, *drops), max(0.0, *drops)
    pad = 0.1 * (high - low or 1.0)
    for ax, (name, rows) in zip(axes, layers.items(), strict=True):
        d = np.array([r["drop"] for r in rows])
        colors = ["tab:green" if v > 0 else "tab:grey" for v in d]
        bars = ax.bar(np.arange(len(d)), d, color=colors)
        ax.bar_label(bars, labels=[f"{v:+.3f}" for v in d], fontsize=7, padding=2)
        _layer_ticks(ax.set_xticks, ax.set_xticklabels, [r["layer"] for r in rows])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylim(low - pad, high + pad)  # one scale for every panel
        ax.set_ylabel(f"{contribution['metric']} drop")
        ax.set_title(name, fontsize=9)
    axes[-1].set_xlabel("layer zeroed (model layer index)")
    fig.suptitle(title)
    return fig


def training_curves(runs: Mapping[str, Sequence[dict]], title: str = "training curves"):
    """Training loss and dev metric against step, one column per dev metric, one line per run.

    ``runs[name]`` is the run's metrics.jsonl rows; rows with ``train_loss``/``loss`` draw the
    top panel, rows with a ``dev`` dict (or ``dev_*`` keys) the bottom one. Runs scored by
    different metrics (accuracy, WER) never share an axis, nor do their losses.
    """
    groups: dict[str, list[str]] = {}
    for name, rows in runs.items():
        dev = [_dev(r) for r in rows if _dev(r) is not None]
        groups.setdefault(dev[0][0] if dev else "", []).append(name)
    fig = _figure(max(8.0, 4.6 * len(groups) + 2.6), 5.6)
    axes = fig.subplots(2, len(groups), squeeze=False)
    for col, (metric, names) in enumerate(groups.items()):
        top, bottom = axes[0][col], axes[1][col]
        for name in names:
            rows = runs[name]
            loss = [
                (r.get("step", i), _loss(r)) for i, r in enumerate(rows) if _loss(r) is not None
            ]
            if loss:
                top.plot(*zip(*loss, strict=True), label=name, linewidth=1.2)
            dev = [(r.get("step", i), _dev(r)[1]) for i, r in enumerate(rows) if _dev(r)]
            if dev:
                bottom.plot(*zip(*dev, strict=True), marker="o", markersize=3, label=name,
                            linewidth=1.2)  # fmt: skip
        top.set_ylabel("training loss (epoch mean)")
        top.set_title(f"runs scored by {metric or 'no metric'}", fontsize=9)
        bottom.set_xlabel("step")
        bottom.set_ylabel(f"dev {metric}")
        low, high = METRIC_RANGES.get(metric, (-np.inf, np.inf))
        if np.isfinite(low) and np.isfinite(high):
            bottom.set_ylim(low - 0.03 * (high - low), high + 0.03 * (high - low))
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
        if top.get_legend_handles_labels()[0]:  # one legend per column, beside the lines
            top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title)
    return fig


def _loss(row):
    for key in ("train_loss", "loss"):
        if isinstance(row.get(key), int | float):
            return float(row[key])
    return None


_DEV_PREFERENCE = ("accuracy", "acc", "wer", "cer", "eer", "r2", "mse", "loss")


def _dev(row):
    dev = row.get("dev")
    if not isinstance(dev, dict):
        dev = {k[4:]: v for k, v in row.items() if k.startswith("dev_")}
    numeric = {k: float(v) for k, v in dev.items() if isinstance(v, int | float)}
    if not numeric:
        return None
    for key in _DEV_PREFERENCE:
        if key in numeric:
            return key, numeric[key]
    key = sorted(numeric)[0]
    return key, numeric[key]
