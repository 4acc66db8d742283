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

from featcache.analysis.report import hconv_filter_energy
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
                    "filter energy of hconv-ac"]  # fmt: skip
    for _, data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for text in ("ssl-a", "asr-c", "best layer", "mean CKA", "hconv-ac", "dev: accuracy="):
        assert text in page
    metrics = re.findall(r"(?:dev|test): accuracy=([0-9.]+)", page)
    assert metrics and all(re.fullmatch(r"\d\.\d{3}", m) for m in metrics), metrics


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
    assert len(images) == 5
    for alt, complete, width in images:
        assert complete and width > 0, f"image {alt!r} did not load"


def test_hconv_filter_energy_counts_each_tap_where_it_meets_a_layer():
    w = np.zeros((2, 3, 5))
    w[:, :, 2] = 1.0  # only the centre tap: layer 3*o sees it
    energy = hconv_filter_energy({"interface.hconv.convs.0.weight": w}, num_layers=13)
    assert energy.shape == (13,)
    assert list(np.nonzero(energy)[0]) == [0, 3, 6, 9, 12]
    assert energy[0] == pytest.approx(6.0)
    w[:, :, 0] = 2.0  # tap 0 meets layer 3*o - 2
    energy = hconv_filter_energy({"x.convs.0.weight": w}, num_layers=13)
    assert energy[1] == pytest.approx(24.0) and energy[12] == pytest.approx(6.0)
    assert hconv_filter_energy({"head.weight": np.ones((3, 4))}) is None


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
