"""One self-contained HTML report: cache, probes, CKA, training runs; PNGs embedded as base64.

:func:`build_report` turns already computed pieces into HTML; :func:`read_run` reads a training run
folder (``summary.json``, ``config.json``, ``metrics.jsonl``, ``best.pt``). The orchestration that
finds or computes the pieces is ``featcache.pipelines.report.run_report``.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from featcache.atomic import read_json

__all__ = ["build_report", "read_run"]


def read_run(run) -> dict:
    """Everything the report shows about one training run folder.

    Returns
    -------
    dict
        ``name``, ``path``, ``summary`` (summary.json or {}), ``config`` (config.json or {}),
        ``history`` (metrics.jsonl rows), ``contribution`` (None here; the report stage adds
        ``featcache.pipelines.contribution.layer_contribution``), ``problems`` (what was missing).
    """
    run = Path(run)
    out = {"name": run.name, "path": str(run), "summary": {}, "config": {}, "history": [],
           "contribution": None, "problems": []}  # fmt: skip
    for key, file in (("summary", "summary.json"), ("config", "config.json")):
        try:
            out[key] = read_json(run / file)
        except FileNotFoundError:
            out["problems"].append(f"no {file}")
    if (run / "metrics.jsonl").exists():
        lines = (run / "metrics.jsonl").read_text().splitlines()
        out["history"] = [json.loads(line) for line in lines if line.strip()]
    return out


# ---------------------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330;
       background: #f6f7f9; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 32px 64px; background: white;
       min-height: 100vh; box-shadow: 0 0 12px rgba(0,0,0,.06); }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 2px solid #e3e6eb; padding-bottom: 4px; }
h3 { font-size: 1.02em; margin-top: 1.4em; }
.sub { color: #5b6475; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.88em; max-width: 100%; }
th, td { border-bottom: 1px solid #e3e6eb; padding: 4px 8px; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f0f2f5; overflow-wrap: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
img { max-width: 100%; display: block; margin: 8px 0; }
.note { color: #5b6475; font-size: 0.9em; }
nav a { margin-right: 14px; }
code { background: #f0f2f5; padding: 1px 4px; border-radius: 3px; }
"""


def _img(fig, alt: str) -> str:
    from featcache.analysis.plots import png_bytes

    data = base64.b64encode(png_bytes(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence],
    numeric: Sequence[int] = (),
    scores: Sequence[int] = (),
) -> str:
    """An HTML table; ``numeric`` columns are right-aligned, ``scores`` shown with 3 decimals."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = ' class="num"' if i in numeric or i in scores else ""
            text = _score(v) if i in scores else _fmt(v)
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _score(v) -> str:
    """Scores and similarities in [0, 1]-ish ranges: fixed decimals so a column lines up."""
    if isinstance(v, (float, np.floating)):
        return "n/a" if not np.isfinite(v) else f"{v:.3f}"
    return _fmt(v)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return "" if v is None else str(v)


def _cache_section(stores: Sequence[dict]) -> str:
    rows = []
    for s in stores:
        up = s.get("upstream") or {}
        rows.append([s["name"], up.get("source") or up.get("name", ""), up.get("architecture", ""),
                     s.get("num_layers"), s.get("hidden_size"), s.get("frame_rate"), s.get("utterances"),
                     s.get("failed"), s.get("dtype"), s.get("format"),
                     f"{s.get('bytes', 0) / 2**20:.1f} MiB"])  # fmt: skip
    header = ["store", "source", "architecture", "layers", "dims", "frames/s", "utterances",
              "failed", "dtype", "format", "size"]  # fmt: skip
    return "<h2 id='cache'>Cache</h2>" + _table(header, rows, numeric=(3, 4, 5, 6, 7, 10))


def _probe_section(probe: dict | None) -> str:
    from featcache.analysis.plots import probe_curves

    out = "<h2 id='probe'>Probing: what each layer knows</h2>"
    if not probe:
        return out + ("<p class='note'>No probe results: run <code>featcache probe --cache CACHE "
                      "--label FIELD --out DIR</code> and pass <code>--probe DIR</code>, or pass "
                      "<code>--label FIELD</code>.</p>")  # fmt: skip
    title = (
        f"{probe['label']}: {probe['metric']} per layer ({probe['level']}, {probe['cv']}-fold CV)"
    )
    out += (f"<p class='sub'>Linear probe ({probe['task']}) of label <b>{html.escape(probe['label'])}"
            f"</b> on {probe['n']} utterances, {probe['cv']}-fold cross-validation; band = +-1 std "
            "over folds, star = best layer.</p>")  # fmt: skip
    fig = probe_curves(probe["results"], probe["metric"], title=title, chance=probe.get("chance"))
    out += _img(fig, "probe curves")
    rows = [[n, b["layer"], b["mean"], b["std"]] for n, b in probe["best"].items()]
    header = ["upstream", "best layer", probe["metric"], "std"]
    return out + _table(header, rows, numeric=(1,), scores=(2, 3))


def _similarity_section(sim: dict | None) -> str:
    from featcache.analysis.plots import cka_grid

    out = "<h2 id='similarity'>Similarity: linear CKA between layers</h2>"
    if not sim:
        return out + "<p class='note'>No similarity results.</p>"
    out += (f"<p class='sub'>Linear CKA at the {sim['level']} level over {sim['n']} shared "
            "utterances: 1 = same geometry (up to rotation and scale), 0 = unrelated. Diagonal "
            "panels compare a model with itself.</p>")  # fmt: skip
    out += _img(cka_grid(sim["names"], sim["matrices"], sim["layers"]), "CKA heat maps")
    rows = []
    for (a, b), m in sim["matrices"].items():
        if a != b:
            i, j = np.unravel_index(np.nanargmax(m), m.shape)
            rows.append([a, b, float(np.nanmean(m)), float(m[i, j]),
                         f"{sim['layers'][a][i]} / {sim['layers'][b][j]}"])  # fmt: skip
    if rows:
        out += _table(["upstream A", "upstream B", "mean CKA", "max CKA", "layers at max"], rows,
                      scores=(2, 3))  # fmt: skip
    return out


def _selection_section(selection: dict | None) -> str:
    from featcache.analysis.text import spearman_line

    if not selection:
        return ""
    out = "<h2 id='selection'>Upstream selection</h2>"
    out += (f"<p class='sub'>Subsets ranked for <b>{html.escape(selection['label'])}</b>: score = "
            f"mean best-layer probe {selection['metric']} + {selection['weight']:g} x mean "
            "complementarity (1 - CKA between the models' best layers).</p>")  # fmt: skip
    rows = [[r["rank"], " + ".join(r["upstreams"]), r["score"], r["strength"], r["complementarity"],
             ", ".join(map(str, r["best_layers"]))] for r in selection["ranking"][:20]]  # fmt: skip
    out += _table(["rank", "upstreams", "score", "strength", "complementarity", "best layers"],
                  rows, numeric=(0,), scores=(2, 3, 4))  # fmt: skip
    v = selection.get("validation")
    if v:
        rows = [[r["rank"], " + ".join(r["upstreams"]), r["predicted"], r["measured"]]
                for r in v["runs"]]  # fmt: skip
        out += (f"<h3>Validation: short {html.escape(v['interface'])} runs</h3>"
                + _table(["rank", "upstreams", "predicted score", f"dev {v['metric']}"], rows,
                         numeric=(0, 3), scores=(2,))
                + f"<p>{html.escape(spearman_line(v))}</p>")  # fmt: skip
    return out


def _runs_section(runs: Sequence[dict]) -> str:
    from featcache.analysis.plots import layer_contribution, layer_weights, training_curves

    out = "<h2 id='runs'>Training runs</h2>"
    if not runs:
        return out + "<p class='note'>No runs given (<code>--runs RUN ...</code>).</p>"
    names = _metric_names(runs)
    tasks = {f"{r['summary'].get('task', '')}:{r['summary'].get('label', '')}" for r in runs}
    task_column = len(tasks) > 1  # one shared task goes in the caption instead
    header = ["run", "upstreams", "interface", *(["task"] if task_column else []),
              *[f"{split} {m}" for m in names for split in ("dev", "test")],
              "best step (epoch)", "steps", "interface params", "notes"]  # fmt: skip
    rows = []
    for r in runs:
        s = r["summary"]
        metrics = s.get("metrics", {})
        best = s.get("best") or {}
        task = [f"{s.get('task', '')}:{s.get('label', '')}"] if task_column else []
        rows.append([r["name"], " + ".join(s.get("upstreams", [])), s.get("interface", ""), *task,
                     *[metrics.get(split, {}).get(m, float("nan")) for m in names
                       for split in ("dev", "test")],
                     f"{best.get('step', '')} ({best.get('epoch', '')})" if best else "",
                     s.get("steps"), s.get("params", {}).get("interface"),
                     "; ".join(r["problems"])])  # fmt: skip
    start = 3 + task_column
    first = start + 2 * len(names)
    shared = "" if task_column else f" Task {html.escape(next(iter(tasks)))} for every run."
    out += ("<h3>Results</h3><p class='sub'>Scores of each run's best checkpoint (chosen on dev "
            f"by the task's main metric; CTC ties on WER go to the lower CER).{shared}</p>")  # fmt: skip
    out += _table(header, rows, numeric=(first, first + 1, first + 2),
                  scores=tuple(range(start, first)))  # fmt: skip
    curves = {r["name"]: r["history"] for r in runs if r["history"]}
    if curves:
        out += "<h3>Training curves</h3>" + _img(training_curves(curves), "training curves")
    for r in runs:
        weights = r["summary"].get("layer_weights")
        if weights:
            out += f"<h3>Learned layer weights: {html.escape(r['name'])}</h3>"
            fig = layer_weights(weights, r["summary"].get("layers"),
                                title=f"{r['name']}: softmax layer weights")  # fmt: skip
            out += _img(fig, f"layer weights of {r['name']}")
        c = r.get("contribution")
        if c:
            worse = "lower" if c["higher_is_better"] else "higher"
            out += f"<h3>Layer contribution: {html.escape(r['name'])}</h3>"
            out += (f"<p class='sub'>How much the best checkpoint's {c['split']} {c['metric']} "
                    f"({c['baseline']:.3f} intact) gets worse when one input layer is zeroed "
                    f"after the run's input standardisation (its training mean), all else "
                    f"kept; positive = the run uses that layer ({c['metric']} goes {worse} "
                    f"without it).</p>")  # fmt: skip
            fig = layer_contribution(c, title=f"{r['name']}: {c['split']} {c['metric']} drop "
                                              "per zeroed layer")  # fmt: skip
            out += _img(fig, f"layer contribution of {r['name']}")
    return out


def _metric_names(runs: Sequence[dict]) -> list[str]:
    """Every metric the runs report, each run's main metric first."""
    names: list[str] = []
    for r in runs:
        s = r["summary"]
        found = [s.get("main_metric")] + sorted(
            {k for m in s.get("metrics", {}).values() for k in m}
        )
        for n in found:
            if n and n not in names:
                names.append(n)
    return names


def build_report(
    *,
    cache: str,
    stores: Sequence[dict],
    probe: dict | None = None,
    similarity: dict | None = None,
    runs: Sequence[dict] = (),
    selection: dict | None = None,
) -> str:
    """The report as one HTML string (no external resources).

    Parameters
    ----------
    cache : str
        Cache folder shown in the title.
    stores : list of dict
        ``featcache.store.info.describe_cache`` rows.
    probe : dict, optional
        ``run_probe`` result (or probe.json).
    similarity : dict, optional
        ``run_similarity`` result (or ``load_similarity`` of its folder).
    runs : list of dict
        :func:`read_run` results.
    selection : dict, optional
        ``run_select`` result (or selection.json).
    """
    from featcache import __version__

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")  # noqa: UP017 (3.10)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>featcache report: {html.escape(str(cache))}</title><style>{CSS}</style></head>",
        "<body><main>",
        f"<h1>featcache report</h1><p class='sub'>cache <code>{html.escape(str(cache))}</code>, "
        f"{len(stores)} store(s); generated {now} by featcache {__version__}</p>",
        "<nav><a href='#cache'>Cache</a><a href='#probe'>Probing</a>"
        "<a href='#similarity'>Similarity</a>"
        + ("<a href='#selection'>Selection</a>" if selection else "")
        + "<a href='#runs'>Runs</a></nav>",
        _cache_section(stores),
        _probe_section(probe),
        _similarity_section(similarity),
        _selection_section(selection),
        _runs_section(runs),
        "</main></body></html>",
    ]
    return "\n".join(parts)
