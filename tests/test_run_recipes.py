"""Recipes: every shipped recipe validates against a fake corpus layout, the demo recipe runs
for real at a reduced size, and an interrupted run continues where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from featcache.errors import ConfigError
from featcache.pipelines.recipe import load_recipe, resolve_recipe
from featcache.testing import layouts
from featcache.testing.models import fake_hub_cache
from featcache.upstreams.registry import REGISTRY

RECIPES = Path(__file__).resolve().parents[1] / "pipelines" / "recipes"
PAPER_UPSTREAMS = ["hubert-base", "wavlm-base-plus", "data2vec-base", "whisper-small"]


def _cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "featcache.cli.main", *args], capture_output=True, text=True, **kw
    )


@pytest.mark.parametrize(
    "recipe, make_layout",
    [
        ("superb-er", lambda tmp: layouts.fake_iemocap(tmp) / "IEMOCAP_full_release"),
        ("librispeech-asr", layouts.fake_librispeech),
        ("voxceleb1-sid", layouts.fake_voxceleb1),
        ("mlsuperb-mono-1h", layouts.fake_mlsuperb),
    ],
)
def test_paper_recipes_validate_on_fake_layouts(recipe, make_layout, tmp_path):
    source = make_layout(tmp_path / "corpus")
    args = ["run", str(RECIPES / f"{recipe}.toml"), "--source", str(source),
            "--out", str(tmp_path / "out"), "--dry-run"]  # fmt: skip
    # offline, with an empty hub cache: every upstream is reported as not loadable
    empty = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "empty-hub"))
    done = _cli(*args, env=empty)
    assert done.returncode == 1 and "recipe is valid" not in done.stdout
    for name in load_recipe(RECIPES / f"{recipe}.toml").extract.upstreams:
        hub_id = REGISTRY[name].value
        assert f"problem: extract: upstream {hub_id!r} is not in the local model-hub cache" in (
            done.stdout
        )
    # the same recipe with the paper's upstreams in the hub cache (tiny stand-ins) is valid
    hub = fake_hub_cache(
        tmp_path / "hub", {REGISTRY[n].value: n.split("-")[0] for n in PAPER_UPSTREAMS}
    )
    done = _cli(*args, env=dict(empty, HF_HUB_CACHE=str(hub)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recipe is valid" in done.stdout
    for stage in ("data", "extract", "train"):
        assert f"to do  {stage}" in done.stdout
    assert not (tmp_path / "out" / "cache").exists()  # a dry run writes nothing


def test_dry_run_reports_a_missing_label_and_a_wrong_layout(tmp_path):
    ls = layouts.fake_librispeech(tmp_path / "corpus")
    done = _cli("run", str(RECIPES / "superb-er.toml"), "--source", str(ls),
                "--out", str(tmp_path / "out"), "--dry-run")  # fmt: skip
    assert done.returncode == 1
    assert "problem: data:" in done.stdout and done.stderr.startswith("error: ")
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        (RECIPES / "voxceleb1-sid.toml").read_text().replace('label = "speaker"', 'label = "mood"')
    )
    vox = layouts.fake_voxceleb1(tmp_path / "corpus2")
    done = _cli("run", str(recipe), "--source", str(vox), "--out", str(tmp_path / "o"), "--dry-run")
    assert done.returncode == 1 and "label 'mood' is not a field" in done.stdout


def test_recipe_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\ndemo = {}\n[extract]\nupstreams = ["fbank"]\ncolour = "red"\n')
    with pytest.raises(ConfigError, match=r"bad.toml \[extract\]: unknown key\(s\) \['colour'\]"):
        load_recipe(bad)
    bad.write_text('[data]\ndemo = {}\n[extract]\nupstreams = ["fbank"]\n'
                   '[[train.runs]]\nname = "x"\nupstreams = ["hubert-base"]\n')  # fmt: skip
    with pytest.raises(ConfigError, match="run 'x' uses"):
        load_recipe(bad)
    bad.write_text('threads = 0\n[data]\ndemo = {}\n[extract]\nupstreams = ["fbank"]\n')
    with pytest.raises(ConfigError, match="threads must be a positive integer"):
        load_recipe(bad)
    assert load_recipe(RECIPES / "demo.toml").threads == 1
    with pytest.raises(ConfigError, match="no recipe 'nope'"):
        resolve_recipe("nope")
    assert resolve_recipe("demo").name == "demo.toml"


def _small_demo(tmp_path: Path) -> Path:
    """The shipped demo recipe at a reduced size: 54 utterances, 2 epochs per run."""
    text = (RECIPES / "demo.toml").read_text()
    assert "utterances = 240" in text and "epochs = 15" in text  # keep in step with demo.toml
    text = text.replace("utterances = 240", "utterances = 54").replace("epochs = 15", "epochs = 2")
    path = tmp_path / "demo-small.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_demo_recipe_runs_and_an_interrupted_run_continues(tmp_path, espeak):
    recipe, out = _small_demo(tmp_path), tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "featcache.cli.main", "run", str(recipe), "--out", str(out)],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    first_run = out / "runs" / "single-ws-random-tiny-hubert" / "summary.json"
    deadline = time.monotonic() + 300
    while not first_run.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.close()
    assert running, (tmp_path / "first.log").read_text()
    assert not (out / "report.html").exists()

    done = _cli("run", str(recipe), "--out", str(out), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    for stage in ("data", "extract", "train"):
        assert f"[{stage}]" in done.stdout
    assert "runs/single-ws-random-tiny-hubert: already done, skipped" in done.stdout
    assert "corpus/manifest.jsonl: already done, skipped" in done.stdout
    assert "[train] " + str(out / "runs" / "multi-chconv") + " ..." in done.stdout

    results = json.loads((out / "results.json").read_text())
    singles = [f"single-{i}-{u}" for i in ("ws", "hconv")
               for u in ("random-tiny-hubert", "random-tiny-wavlm", "fbank")]  # fmt: skip
    assert [r["run"] for r in results] == [*singles, "multi-ws", "multi-hconv", "multi-chconv"]
    for row in results:
        assert 0.0 <= row["test"]["accuracy"] <= 1.0
    # each fusion is compared with the best single model of its interface (by dev accuracy)
    table = (out / "results.txt").read_text()
    for multi in (r for r in results if r["run"].startswith("multi-")):
        kind = "hconv" if multi["interface"] == "chconv" else multi["interface"]
        same = [r for r in results if r["run"] in singles and r["interface"] == kind]
        best = max(same, key=lambda r: r["dev"]["accuracy"])
        delta = multi["test"]["accuracy"] - best["test"]["accuracy"]
        assert f"fusion vs best single ({best['run']}): {delta:+.4f} test accuracy" in table
    for name in ("probe/probe.json", "similarity/similarity.npz", "select/selection.json"):
        assert (out / "analysis" / name).exists()
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert "report:" in done.stdout and "multi-chconv" in done.stdout

    again = _cli("run", str(recipe), "--out", str(out), env=env)
    assert again.returncode == 0
    assert (
        again.stdout.count("already done, skipped") == 1 + 3 + 9 + 3
    )  # data, extract, train, analyses


def test_dry_run_checks_layers_and_interfaces_against_each_upstream(tmp_path):
    recipe = tmp_path / "r.toml"
    text = (RECIPES / "demo.toml").read_text()
    recipe.write_text(text.replace('interface = "chconv"', 'interface = "group-ws:9"'))
    done = _cli("run", str(recipe), "--out", str(tmp_path / "o"), "--dry-run")
    assert done.returncode == 1
    assert (
        "interface 'group-ws:9'" in done.stdout
        and "an upstream has 1; use group-ws:K with K <= 1" in done.stdout
    )
    recipe.write_text(text.replace("[extract]", '[extract]\nlayers = "0-5"'))
    done = _cli("run", str(recipe), "--out", str(tmp_path / "o"), "--dry-run")
    assert done.returncode == 1 and "--layers '0-5'" in done.stdout
    assert not (tmp_path / "o").exists()
