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
    "filter_energy",
    "layer_weights",
    "png_bytes",
    "probe_curves",
    "save_png",
    "training_curves",
]

DPI = 110


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
    ``chance`` draws a dashed line (e.g. the majority-class rate).
    """
    fig = _figure(7.5, 4.2)
    ax = fig.add_subplot()
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=0.9, label="majority class")
    for name, rows in results.items():
        x = np.array([r["layer"] for r in rows])
        m = np.array([r["mean"] for r in rows])
        s = np.array([r["std"] for r in rows])
        (line,) = ax.plot(x, m, marker="o", markersize=3.5, label=name)
        ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.15, linewidth=0)
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


def filter_energy(energy: Sequence[float], title: str = "HConv first-layer filter energy"):
    """Squared weight of the first HConv convolution per input layer position."""
    e = np.asarray(energy, dtype=float)
    fig = _figure(7.5, 3.0)
    ax = fig.add_subplot()
    ax.bar(np.arange(len(e)), e / e.sum(), color="tab:orange")
    _layer_ticks(ax.set_xticks, ax.set_xticklabels, list(range(len(e))))
    ax.set_xlabel("input layer position (after alignment)")
    ax.set_ylabel("share of energy")
    ax.set_title(title, fontsize=10)
    return fig


def training_curves(runs: Mapping[str, Sequence[dict]], title: str = "training curves"):
    """Training loss and dev metric against step, one line per run.

    ``runs[name]`` is the run's metrics.jsonl rows; rows with ``train_loss``/``loss`` draw the
    left panel, rows with a ``dev`` dict (or ``dev_*`` keys) the right one.
    """
    fig = _figure(9.0, 3.4)
    left, right = fig.subplots(1, 2)
    dev_name = ""
    for name, rows in runs.items():
        loss = [(r.get("step", i), _loss(r)) for i, r in enumerate(rows) if _loss(r) is not None]
        if loss:
            x, y = zip(*loss, strict=True)
            left.plot(x, y, label=name, linewidth=1.2)
        dev = [(r.get("step", i), *_dev(r)) for i, r in enumerate(rows) if _dev(r) is not None]
        if dev:
            x, metric, y = zip(*dev, strict=True)
            dev_name = metric[0]
            right.plot(x, y, marker="o", markersize=3, label=name, linewidth=1.2)
    left.set_xlabel("step")
    left.set_ylabel("training loss (epoch mean)")
    right.set_xlabel("step")
    right.set_ylabel(f"dev {dev_name}")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
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
