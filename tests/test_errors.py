"""User mistakes end in one line naming the file and what to do; errors subclass builtins."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest

import featcache.errors as errors
from featcache.manifest import Manifest
from featcache.testing.caches import write_cache


def test_every_error_subclasses_a_fitting_builtin():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, errors.FeatcacheError)]  # fmt: skip
    assert len(classes) >= 8
    for cls in classes:
        builtins = [b for b in cls.__mro__ if b.__module__ == "builtins"]
        fitting = [b for b in builtins if b not in (Exception, BaseException, object)]
        assert cls is errors.FeatcacheError or fitting, cls
    assert issubclass(errors.StoreNotFoundError, FileNotFoundError)
    assert issubclass(errors.ConfigError, ValueError)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    rng = np.random.default_rng(0)
    records = [{"id": f"u{i}", "audio": f"/a/{i}.wav", "speaker": f"s{i % 2}",
                "split": ("train", "train", "dev", "test")[i % 4]} for i in range(8)]  # fmt: skip
    arrays = {r["id"]: rng.standard_normal((6, 13, 4)).astype(np.float32) for r in records}
    write_cache(root / "cache", "up", arrays, Manifest.from_records(records))
    return root


def _featcache(*args):
    done = subprocess.run([sys.executable, "-m", "featcache.cli.main", *map(str, args)],
                          capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1",
                          "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("error: ")
    return done.stderr


def test_group_ws_with_more_groups_than_layers(cache, tmp_path):
    message = _featcache("train", "--cache", cache / "cache", "--interface", "group-ws:20",
                         "--out", tmp_path / "run", "--device", "cpu")  # fmt: skip
    assert "group-ws:20: needs at least 20 layers but an upstream has 13" in message
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_layer_the_store_does_not_hold(cache, tmp_path):
    message = _featcache("train", "--cache", cache / "cache", "--interface", "layer:13",
                         "--out", tmp_path / "run")  # fmt: skip
    assert "layer 13 is not stored" in message and "stored: [0, 1," in message


def test_a_folder_given_as_config(cache, tmp_path):
    message = _featcache("train", "--cache", cache / "cache", "--config", tmp_path,
                         "--out", tmp_path / "run")  # fmt: skip
    assert f"--config {tmp_path}: is a folder" in message


def test_a_corrupt_summary_json(cache, tmp_path):
    from featcache.train.config import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(cache=str(cache / "cache"), out=str(run), num_workers=0)
    (run / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    (run / "summary.json").write_text('{"interface": "ws", "metr')  # a torn write
    message = _featcache("train", "--cache", cache / "cache", "--out", run, "--num-workers", 0)
    assert f"{run / 'summary.json'}: not valid JSON" in message and "--overwrite" in message
    message = _featcache("report", "--cache", cache / "cache", "--runs", run,
                         "--out", tmp_path / "r.html")  # fmt: skip
    assert "summary.json: not valid JSON" in message


def test_unknown_names_list_the_choices(cache, tmp_path):
    message = _featcache("train", "--cache", cache / "cache", "--interface", "hconf",
                         "--out", tmp_path / "run")  # fmt: skip
    assert "unknown interface (did you mean hconv" in message and "group-ws:K" in message
    message = _featcache("train", "--cache", cache / "cache", "--interface", "ws:ln:2",
                         "--out", tmp_path / "run")  # fmt: skip
    assert "'ln:2' is not 'ln'" in message
