"""`featcache train` / `evaluate` end to end on a small espeak-ng corpus with real features.

The cache holds log-mel filterbanks (100 frames/s, 1 layer) and a tiny random-initialised HuBERT
(50 frames/s, 3 layers), written through the store's own code path.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest
import torch

from featcache.cli.main import main
from featcache.errors import ConfigError
from featcache.pipelines.train import train
from featcache.train.config import TrainConfig

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    from featcache.audio import load_utterance
    from featcache.testing.caches import write_cache
    from featcache.testing.corpus import make_speech_corpus
    from featcache.upstreams import load_upstream

    root = tmp_path_factory.mktemp("train")
    manifest = make_speech_corpus(root / "corpus", utterances=60)
    wavs = [load_utterance(u) for u in manifest]
    for name in ("fbank", "random:tiny-hubert"):
        upstream = load_upstream(name)
        hidden = upstream.forward(wavs)  # each (L, T, D)
        arrays = {u.id: h.transpose(1, 0, 2) for u, h in zip(manifest, hidden, strict=True)}
        write_cache(root / "cache", upstream.slug, arrays, manifest, upstream.frame_rate)
    return root / "cache", manifest


def _config(cache_dir, out, **kw):
    values = dict(cache=str(cache_dir), out=str(out), upstreams=["fbank"], label="speaker",
                  interface="ws:ln", epochs=25, patience=25, num_workers=0, batch_frames=2000)  # fmt: skip
    values.update(kw)
    return TrainConfig(**values)


def test_speaker_accuracy_far_above_majority_and_evaluate(cache, tmp_path, capsys):
    cache_dir, manifest = cache
    out = tmp_path / "run"
    main(["train", "--cache", str(cache_dir), "-u", "fbank", "--task", "classify", "--label",
          "speaker", "--interface", "ws:ln", "--out", str(out), "--epochs", "10", "--patience",
          "10", "--num-workers", "1", "--device", "cpu"])  # fmt: skip
    printed = capsys.readouterr().out
    assert "epoch 10 " in printed and "results: interface=ws:ln" in printed
    summary = json.loads((out / "summary.json").read_text())
    test_speakers = [u.get("speaker") for u in manifest if u.split == "test"]
    majority = Counter(test_speakers).most_common(1)[0][1] / len(test_speakers)
    assert majority <= 0.2
    assert summary["metrics"]["test"]["accuracy"] >= majority + 0.5
    assert summary["upstreams"] == ["fbank"] and summary["layers"] == {"fbank": [0]}
    assert summary["params"] == {"interface": 1, "head": 80 * 256 + 256 + 256 * 6 + 6}
    assert summary["layer_weights"] == {"fbank": [1.0]}
    assert summary["data"]["used"] == {"train": 36, "dev": 12, "test": 12}
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == list(range(1, 11))
    assert json.loads((out / "config.json").read_text())["interface"] == "ws:ln"
    best = torch.load(out / "best.pt", weights_only=False)
    assert "interface.weights" in best["model"]
    # evaluate re-scores the best checkpoint to the same numbers
    main(["evaluate", str(out), "--split", "test"])
    assert json.loads((out / "eval_test.json").read_text()) == summary["metrics"]["test"]
    # the same command again finds the finished run
    again = train(_config(cache_dir, out, epochs=10, patience=10, device="cpu"), log=lambda s: None)
    assert again == summary


@pytest.mark.parametrize("interface", ["hconv", "chconv", "ws", "gumd"])
def test_multi_model_fusion_runs(cache, tmp_path, interface):
    cache_dir, _ = cache
    config = _config(cache_dir, tmp_path / interface, upstreams=["fbank", "random:tiny-hubert"],
                     interface=interface, epochs=1, max_steps=3)  # fmt: skip
    summary = train(config, log=lambda s: None)
    assert summary["upstreams"] == ["fbank", "random-tiny-hubert"]
    assert summary["layers"] == {"fbank": [0], "random-tiny-hubert": [0, 1, 2]}
    assert summary["steps"] == 3
    assert set(summary["metrics"]) == {"dev", "test"}
    if interface == "ws":
        assert [len(w) for w in summary["layer_weights"].values()] == [1, 3]
        assert sum(summary["layer_weights"]["random-tiny-hubert"]) == pytest.approx(1.0)
    if interface == "hconv":  # aligned to 3 layers x 80 dims: one conv 80 -> 80 // 1
        assert summary["params"]["interface"] == 80 * 80 * 5 + 80


def test_bf16_autocast_path_and_results_table(cache, tmp_path, capsys):
    cache_dir, _ = cache
    runs = []
    for interface in ("hconv", "cls"):
        out = tmp_path / interface
        summary = train(_config(cache_dir, out, interface=interface, precision="bf16",
                                epochs=1, max_steps=1), log=lambda s: None)  # fmt: skip
        assert summary["precision"] == "bf16" and summary["device"] == "cpu"
        runs.append(str(out))
    capsys.readouterr()
    main(["evaluate", "--runs", runs[0], runs[1], "--split", "dev"])
    table = capsys.readouterr().out.splitlines()[-4:]
    assert table[0].split()[:3] == ["interface", "upstreams", "task"]
    assert [row.split()[0] for row in table[2:]] == ["hconv", "cls"]


def test_without_upstream_uses_every_cache_and_last_layer(cache, tmp_path):
    cache_dir, _ = cache
    summary = train(_config(cache_dir, tmp_path / "r", upstreams=[], interface="last",
                            epochs=1, max_steps=2), log=lambda s: None)  # fmt: skip
    assert summary["layers"] == {"fbank": [0], "random-tiny-hubert": [2]}


def test_missing_utterances_are_reported(cache, tmp_path):
    from featcache.store import open_cache
    from featcache.testing.caches import write_cache

    cache_dir, manifest = cache
    partial = tmp_path / "cache"
    shutil.copytree(cache_dir, partial)
    reader = open_cache(cache_dir, "fbank")
    dropped = manifest.ids()[:5]
    arrays = {u: reader.get(u) for u in manifest.ids() if u not in dropped}
    write_cache(partial, "partial", arrays, manifest, 100.0)
    lines = []
    summary = train(_config(partial, tmp_path / "r", upstreams=["fbank", "partial"],
                            epochs=1, max_steps=1), log=lines.append)  # fmt: skip
    assert summary["data"]["missing"] == {"partial": {"count": 5, "ids": dropped}}
    assert sum(summary["data"]["used"].values()) == 55
    assert any(line.startswith("warning: 5 utterance(s) have no frames in the cache of partial")
               for line in lines)  # fmt: skip


def test_ctc_task_reports_wer_and_cer(cache, tmp_path):
    cache_dir, _ = cache
    summary = train(_config(cache_dir, tmp_path / "ctc", upstreams=["random:tiny-hubert"],
                            task="ctc", label="text", interface="ws", epochs=1, max_steps=1,
                            batch_frames=500), log=lambda s: None)  # fmt: skip
    assert summary["main_metric"] == "wer"
    assert set(summary["metrics"]["test"]) == {"wer", "cer"}
    assert summary["metrics"]["test"]["cer"] > 0


def test_toml_config_with_cli_override(cache, tmp_path, capsys):
    cache_dir, _ = cache
    toml = tmp_path / "train.toml"
    toml.write_text(f'cache = "{cache_dir}"\nupstream = ["fbank"]\nlabel = "speaker"\n'
                    'interface = "hconv"\nepochs = 7\nmax-steps = 2\nnum_workers = 0\n')  # fmt: skip
    main(["train", "--config", str(toml), "--interface", "concat", "--out", str(tmp_path / "r")])
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["interface"] == "concat" and config["epochs"] == 7 and config["max_steps"] == 2
    toml.write_text("epoch = 3\n")
    capsys.readouterr()  # the first run's progress bar
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(toml), "--out", str(tmp_path / "r2")])
    assert exit_info.value.code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "unknown training option 'epoch'" in line


def test_a_different_config_in_the_same_folder_is_refused(cache, tmp_path):
    cache_dir, _ = cache
    train(_config(cache_dir, tmp_path / "r", epochs=1, max_steps=1), log=lambda s: None)
    with pytest.raises(ConfigError, match="different config"):
        train(_config(cache_dir, tmp_path / "r", epochs=1, max_steps=1, lr=0.1), log=lambda s: None)


def test_a_bad_label_fails_before_the_run_folder_is_made(cache, tmp_path):
    cache_dir, _ = cache
    with pytest.raises(ConfigError, match="label field 'emotion' is not in the manifest"):
        train(_config(cache_dir, tmp_path / "r", label="emotion"), log=lambda s: None)
    assert not (tmp_path / "r" / "config.json").exists()


def test_an_interface_that_does_not_fit_fails_before_work_and_keeps_the_old_run(cache, tmp_path):
    cache_dir, _ = cache
    out = tmp_path / "r"
    first = train(_config(cache_dir, out, epochs=1, max_steps=1), log=lambda s: None)
    lines = []
    with pytest.raises(
        ConfigError, match="group-ws:4: needs at least 4 layers but an upstream has 1"
    ):
        # fbank has one layer; --overwrite must not delete the finished run for a bad option
        train(_config(cache_dir, out, interface="group-ws:4", epochs=1, max_steps=1),
              log=lines.append, overwrite=True)  # fmt: skip
    assert not any("normaliz" in line for line in lines)  # failed before any statistics
    assert json.loads((out / "summary.json").read_text()) == first


def test_evaluate_writes_predictions_and_prints_a_few(cache, tmp_path, capsys):
    cache_dir, manifest = cache
    out = tmp_path / "ctc"
    train(_config(cache_dir, out, upstreams=["fbank"], task="ctc", label="text", interface="ws",
                  epochs=1, max_steps=2, batch_frames=1000), log=lambda s: None)  # fmt: skip
    capsys.readouterr()
    main(["evaluate", str(out), "--split", "dev"])
    printed = capsys.readouterr().out
    rows = [json.loads(x) for x in (out / "predictions_dev.jsonl").read_text().splitlines()]
    dev = {u.id: u.get("text") for u in manifest if u.split == "dev"}
    assert sorted(r["id"] for r in rows) == sorted(dev)
    assert all(r["ref"] == " ".join(dev[r["id"]].lower().split()) for r in rows)
    from featcache.heads.metrics import cer, wer

    scored = json.loads((out / "eval_dev.json").read_text())  # metrics equal the saved pairs
    assert scored["wer"] == pytest.approx(wer([r["ref"] for r in rows], [r["hyp"] for r in rows]))
    assert scored["cer"] == pytest.approx(cer([r["ref"] for r in rows], [r["hyp"] for r in rows]))
    assert sum(f"  {r['id']}: ref " in printed for r in rows) == 3


def test_train_shows_a_step_bar_with_loss_and_frame_rate(cache, tmp_path, capsys):
    cache_dir, _ = cache
    main(["train", "--cache", str(cache_dir), "-u", "fbank", "--out", str(tmp_path / "r"),
          "--epochs", "1", "--max-steps", "3", "--num-workers", "0", "--threads", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert "epoch 1:" in err and "loss=" in err and "frames/s" in err
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["threads"] == 1
    assert torch.get_num_threads() == 1  # restored to the test's pinned count afterwards


def test_an_out_that_is_a_file_fails_before_work(cache, tmp_path):
    cache_dir, _ = cache
    (tmp_path / "r").write_text("my notes")
    with pytest.raises(ConfigError, match="--out .* is a file"):
        train(_config(cache_dir, tmp_path / "r", epochs=1, max_steps=1), log=lambda s: None)
    assert (tmp_path / "r").read_text() == "my notes"
