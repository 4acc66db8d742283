"""probe / similarity / select on a real cache (Zarr and HDF5 stores with planted structure)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from featcache.cli.main import cli
from featcache.errors import ConfigError, StoreNotFoundError
from featcache.pipelines.analyse import run_probe, run_select, run_similarity
from featcache.testing.planted import PLANTED_BEST_LAYERS, write_planted_cache


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_planted_cache(tmp_path_factory.mktemp("planted") / "cache")


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_probe_command_finds_the_planted_layers(cache, tmp_path):
    out = invoke("probe", "--cache", cache, "--label", "speaker", "--cv", 4, "--out", tmp_path)
    assert "best layer per upstream" in out
    for name, layer in PLANTED_BEST_LAYERS.items():
        assert f"{name}: layer {layer} (1.000" in out
    summary = json.loads((tmp_path / "probe.json").read_text())
    assert summary["task"] == "classify" and summary["n"] == 24
    assert {n: b["layer"] for n, b in summary["best"].items()} == PLANTED_BEST_LAYERS
    with open(tmp_path / "probe.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 + 5 + 4
    assert (tmp_path / "probe.png").read_bytes()[:4] == b"\x89PNG"


def test_frame_level_probe_and_split_and_manifest_override(cache, tmp_path):
    summary = run_probe(cache, "speaker", upstreams=["asr-c"], level="frames", max_frames=600, cv=3)
    assert summary["rows"] == 600 and summary["best"]["asr-c"]["layer"] == 2
    from featcache.manifest import Manifest

    m = Manifest.load(cache / "manifest.jsonl")
    train_only = run_probe(cache, "speaker", upstreams=["ssl-a"], split=["train"], cv=3)
    assert train_only["n"] == len(m.split("train")) < len(m)
    # a new label for the same utterances, from another manifest, matched by id
    records = [{**u.to_dict(), "loud": "hi" if i % 2 else "lo"} for i, u in enumerate(m)]
    Manifest.from_records(records).write(tmp_path / "relabel.jsonl")
    relabel = run_probe(
        cache, "loud", upstreams=["ssl-a"], manifest=tmp_path / "relabel.jsonl", cv=3
    )
    assert (
        relabel["label"] == "loud" and relabel["best"]["ssl-a"]["mean"] < 0.9
    )  # no signal planted
    regress = run_probe(cache, "loudness", upstreams=["ssl-a"], task="regress", cv=3)
    assert regress["metric"] == "r2"


def test_similarity_pooled_command_writes_npz_and_heat_maps(cache, tmp_path):
    out = invoke("similarity", "--cache", cache, "--out", tmp_path)
    assert "ssl-a vs ssl-b" in out
    with np.load(tmp_path / "similarity.npz") as z:
        ab = z["cka__ssl-a__ssl-b"]
        aa = z["cka__ssl-a__ssl-a"]
        assert ab.shape == (5, 5) and z["cka__asr-c__ssl-a"].shape == (4, 5)
        assert list(z["layers__asr-c"]) == [0, 1, 2, 3]
    np.testing.assert_allclose(np.diag(aa), 1.0, atol=1e-9)
    assert np.diag(ab).min() > 0.95  # ssl-b is ssl-a rotated
    meta = json.loads((tmp_path / "similarity.json").read_text())
    assert meta["level"] == "pooled" and meta["n"] == 24
    assert (tmp_path / "similarity.png").stat().st_size > 10_000


def test_frame_level_cka_equals_direct_computation_on_training_aligned_frames(cache):
    torch = pytest.importorskip("torch")
    from featcache import open_cache
    from featcache.fusion.align import resample_frames

    result = run_similarity(cache, upstreams=["ssl-a", "asr-c"], level="frames", max_frames=None,
                            include_self=False, max_bytes=1)  # fmt: skip
    got = result["matrices"][("ssl-a", "asr-c")]
    a, c = open_cache(cache, "ssl-a"), open_cache(cache, "asr-c")
    xs, ys = [], []
    for u in a.utterances:
        fa, fc = torch.from_numpy(a.get(u)), torch.from_numpy(c.get(u))
        t = max(len(fa), len(fc))
        xs.append(resample_frames(fa, t).numpy())  # (T, 5, 16)
        ys.append(resample_frames(fc, t).numpy())  # (T, 4, 12)
    x, y = np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)
    assert result["rows"]["ssl-a|asr-c"] == len(x)

    def cka(p, q):
        p, q = p - p.mean(0), q - q.mean(0)
        return (np.linalg.norm(p.T @ q) ** 2) / (np.linalg.norm(p.T @ p) * np.linalg.norm(q.T @ q))

    expected = np.array([[cka(x[:, i], y[:, j]) for j in range(4)] for i in range(5)])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_frame_sampling_is_deterministic(cache):
    def run(seed):
        r = run_similarity(cache, upstreams=["ssl-a", "ssl-b"], level="frames", max_frames=300,
                           seed=seed, include_self=False)  # fmt: skip
        assert r["rows"]["ssl-a|ssl-b"] == 300
        return r["matrices"][("ssl-a", "ssl-b")]

    first, again, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_select_command_ranks_complementary_pair_above_redundant(cache, tmp_path):
    out = invoke("select", "--cache", cache, "--label", "speaker", "--cv", 4, "--out", tmp_path)
    assert "score = mean strength + 0.25 x mean complementarity" in out
    result = json.loads((tmp_path / "selection.json").read_text())
    order = [tuple(r["upstreams"]) for r in result["ranking"]]
    assert order.index(("asr-c", "ssl-a")) < order.index(("ssl-a", "ssl-b"))
    assert order.index(("asr-c", "ssl-b")) < order.index(("ssl-a", "ssl-b"))
    assert result["upstreams"]["asr-c"]["best_layer"] == 2
    assert (tmp_path / "selection.csv").read_text().count("\n") == 1 + 6


def test_select_validate_trains_fusions_and_reports_rank_correlation(cache, tmp_path):
    result = run_select(cache, "speaker", cv=4, validate=1, interface="ws", out=tmp_path,
                        train_options={"epochs": 2, "device": "cpu", "batch_frames": 4000},
                        log=lambda line: None)  # fmt: skip
    v = result["validation"]
    assert [r["rank"] for r in v["runs"]] == [1, 6]  # best and worst of 6 subsets
    for r in v["runs"]:
        assert (tmp_path / "validate" / "+".join(r["upstreams"]) / "summary.json").exists()
        assert 0.0 <= r["measured"] <= 1.0 and r["metric"] == "accuracy"
    assert v["spearman"] is None  # two points always correlate +-1: not reported as evidence
    from featcache.analysis.text import format_select

    assert "not computed from 2 runs" in format_select(result)
    assert "Spearman rank correlation (predicted" not in format_select(result)


def test_user_errors_are_one_line_featcache_errors(cache, tmp_path):
    with pytest.raises(ConfigError, match="no utterance has a value for --label 'emotion'"):
        run_probe(cache, "emotion")
    with pytest.raises(StoreNotFoundError, match="no store for upstream 'wavlm'"):
        run_similarity(cache, upstreams=["wavlm"])
    with pytest.raises(ConfigError, match="split nope"):
        run_similarity(cache, split=["nope"])
    with pytest.raises(ConfigError, match="--split nope; its splits are dev, test, train"):
        run_probe(cache, "speaker", split=["nope"])
    with pytest.raises(StoreNotFoundError):
        run_probe(tmp_path, "speaker")


def test_hdf5_cache_gives_the_same_similarity_as_zarr(cache, tmp_path):
    h5 = write_planted_cache(tmp_path / "h5", format="hdf5")
    assert sorted(p.suffix for p in h5.iterdir() if p.suffix == ".h5") == [".h5"] * 3
    for level in ("pooled", "frames"):
        z = run_similarity(cache, upstreams=["ssl-a", "asr-c"], level=level, max_frames=400)
        h = run_similarity(h5, upstreams=["ssl-a", "asr-c"], level=level, max_frames=400)
        for pair, m in z["matrices"].items():
            np.testing.assert_allclose(h["matrices"][pair], m, atol=1e-9)


def test_nothing_to_compare_and_missing_report_inputs_fail_before_any_work(cache, tmp_path):
    from featcache.pipelines.analyse import run_report

    with pytest.raises(ConfigError, match="nothing to compare with --no-self and one upstream"):
        run_similarity(cache, upstreams=["ssl-a"], include_self=False)
    logged = []
    with pytest.raises(ConfigError, match="give the output folder of `featcache train`"):
        run_report(cache, tmp_path / "r.html", runs=[tmp_path / "nope"], label="speaker",
                   log=logged.append)  # fmt: skip
    assert logged == [] and not (tmp_path / "r.html").exists()


def test_manifest_of_other_utterances_is_named_as_the_problem(cache, tmp_path):
    from featcache.manifest import write_manifest

    other = write_manifest([{"id": "ü-1", "audio": "x.wav", "speaker": "a"}], tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match="none of the 1 utterance ids of manifest .*'ü-1'"):
        run_probe(cache, "speaker", manifest=other)


def test_negative_max_frames_is_a_user_error(cache):
    with pytest.raises(ConfigError, match="--max-frames must be positive"):
        run_probe(cache, "speaker", level="frames", max_frames=-3)
