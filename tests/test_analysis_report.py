"""The HTML report: one self-contained file whose images load in a real browser."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from featcache.cli.main import cli
from featcache.testing.planted import write_planted_cache

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

IMAGE_CHECK = """<script>window.addEventListener('load', () => {
  const r = document.createElement('pre'); r.id = 'imgcheck';
  r.textContent = JSON.stringify(Array.from(document.images, i => [i.alt, i.complete, i.naturalWidth]));
  document.body.appendChild(r); });</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report over the planted cache with a ws run and an hconv run, trained for real."""
    from featcache.pipelines.train import train
    from featcache.train.config import TrainConfig

    root = tmp_path_factory.mktemp("report")
    cache = write_planted_cache(root / "cache")
    for name, ups, interface in (
        ("ws-a", ["ssl-a"], "ws"),
        ("hconv-ac", ["ssl-a", "asr-c"], "hconv"),
    ):
        train(TrainConfig(cache=str(cache), out=str(root / "runs" / name), upstreams=ups,
                          interface=interface, epochs=2, num_workers=0, device="cpu"),
              log=lambda line: None)  # fmt: skip
    runner = CliRunner()
    for args in (["probe", "--label", "speaker", "--cv", "3", "--out", root / "probe"],
                 ["similarity", "--out", root / "sim"]):  # fmt: skip
        result = runner.invoke(
            cli, [*map(str, args), "--cache", str(cache)], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
    out = root / "report.html"
    result = runner.invoke(cli, ["report", "--cache", str(cache), "--probe", str(root / "probe"),
                                 "--similarity", str(root / "sim"), "--out", str(out), "--runs",
                                 str(root / "runs" / "ws-a"), str(root / "runs" / "hconv-ac")],
                           catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_report_is_one_self_contained_file_with_every_section(report):
    page = report.read_text()
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)  # nothing external
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    alts = [alt for alt, _ in images]
    assert alts == ["probe curves", "CKA heat maps", "training curves", "layer weights of ws-a",
                    "layer contribution of ws-a", "layer contribution of hconv-ac"]  # fmt: skip
    assert "filter energy" not in page
    for _, data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for text in (
        "ssl-a",
        "asr-c",
        "best layer",
        "mean CKA",
        "hconv-ac",
        "<th>dev accuracy</th>",
        "<th>test accuracy</th>",
        "best step (epoch)",
    ):
        assert text in page


def test_report_images_load_in_headless_chromium(report, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = tmp_path / "check.html"
    page.write_text(report.read_text().replace("</body>", IMAGE_CHECK + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    found = re.search(r'<pre id="imgcheck">(.*?)</pre>', dom)
    assert found, "the page's load handler did not run"
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == 6
    for alt, complete, width in images:
        assert complete and width > 0, f"image {alt!r} did not load"


def test_score_columns_use_fixed_decimals(tmp_path):
    """A perfect probe reads 1.000 +- 0.000 beside 0.567, not 1 beside 0.5667."""
    from featcache.analysis.report import build_report
    from featcache.pipelines.analyse import run_probe, run_select

    cache = write_planted_cache(tmp_path / "cache")
    probe = run_probe(cache, "speaker", cv=3)
    selection = run_select(cache, "speaker", cv=3)
    assert any(b["mean"] == 1.0 and b["std"] == 0.0 for b in probe["best"].values())
    page = build_report(cache=str(cache), stores=[], probe=probe, selection=selection)
    cells = re.findall(r'<td class="num">([^<]*)</td>', page)
    assert "1.000" in cells and "0.000" in cells
    assert all(re.fullmatch(r"\d+|-?\d+\.\d{3}", c) for c in cells), cells


def test_report_refuses_a_folder_that_is_not_a_run(report, tmp_path):
    cache = report.parent / "cache"
    (tmp_path / "notarun").mkdir()
    result = CliRunner().invoke(cli, ["report", "--cache", str(cache), "--out",
                                      str(tmp_path / "r.html"), "--runs", str(tmp_path / "notarun")])  # fmt: skip
    assert result.exit_code != 0 and "not a training run folder" in str(result.exception)
    assert not (tmp_path / "r.html").exists()


def test_accuracy_and_wer_runs_never_share_an_axis():
    from featcache.analysis.plots import training_curves

    acc = [{"step": s, "train_loss": 1.0 / s, "dev": {"accuracy": 0.5 + s / 100}} for s in (1, 2)]
    wer = [{"step": s, "train_loss": 50.0 / s, "dev": {"wer": 1.0, "cer": 0.9 - s / 10}}
           for s in (1, 2, 3)]  # fmt: skip
    fig = training_curves({"cls": acc, "asr": wer})
    plotted = {ax.get_ylabel(): [line.get_label() for line in ax.get_lines()] for ax in fig.axes}
    assert plotted["dev accuracy"] == ["cls"] and plotted["dev wer"] == ["asr"]
    losses = [labels for ax in fig.axes if ax.get_ylabel().startswith("training loss")
              for labels in [[line.get_label() for line in ax.get_lines()]]]  # fmt: skip
    assert sorted(map(tuple, losses)) == [("asr",), ("cls",)]  # a CTC loss beside CE is no axis


def test_probe_band_stays_inside_the_metric_range():
    from featcache.analysis.plots import probe_curves

    rows = [{"layer": 0, "mean": 0.98, "std": 0.05}, {"layer": 1, "mean": 0.03, "std": 0.05}]
    fig = probe_curves({"m": rows}, "accuracy")
    (band,) = fig.axes[0].collections
    y = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
    assert y.max() == pytest.approx(1.0) and y.min() == pytest.approx(0.0)


def test_cka_cells_carry_their_values():
    from featcache.analysis.plots import cka_grid

    m = np.array([[0.25, 0.5], [0.75, 1.0], [0.1, 0.2]])  # a: 3 layers, b: 2 layers
    fig = cka_grid(["a", "b"], {("a", "b"): m}, {"a": [0, 1, 2], "b": [0, 1]})
    texts = sorted(t.get_text() for ax in fig.axes for t in ax.texts)
    # the (a, b) panel and its transpose (b, a) each write all six values
    assert texts == sorted(2 * [f"{v:.2f}" for v in m.ravel()])
