"""The command line: instant help, only working commands listed, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from featcache.testing.corpus import write_wav


def _run(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "featcache.cli.main", *args], capture_output=True, text=True, **kw
    )


def test_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys, time; t = time.perf_counter();"
        "from featcache.cli.main import cli;"
        "from click.testing import CliRunner;"
        "r = CliRunner().invoke(cli, ['--help']);"
        "assert r.exit_code == 0, r.output;"
        "heavy = [m for m in ('torch', 'transformers', 'zarr', 'h5py', 'dask', 'sklearn',"
        " 'matplotlib', 'numpy') if m in sys.modules];"
        "print(repr(heavy), time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, _ = out.stdout.rsplit(" ", 1)
    assert heavy == "[]"
    t0 = time.perf_counter()
    assert _run("--help").returncode == 0
    assert time.perf_counter() - t0 < 5  # generous for a loaded CI box; ~0.1 s when idle


def test_every_listed_command_has_working_help():
    from featcache.cli.main import COMMANDS, SHORT_HELP

    listing = _run("--help").stdout
    for name in COMMANDS:
        assert name in listing and SHORT_HELP[name]
        done = _run(name, "--help")
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert "Usage:" in done.stdout


def test_validate_exits_non_zero_with_line_numbers(tmp_path):
    write_wav(tmp_path / "a.wav", np.zeros(1600, np.float32) + 0.1)
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"id": "a", "audio": "a.wav"})
        + "\nnot json\n"
        + json.dumps({"id": "b", "audio": "b.wav"})
        + "\n"
    )
    done = _run("manifest", "validate", str(tmp_path / "m.jsonl"))
    assert done.returncode == 1
    assert "m.jsonl:2:" in done.stdout and "m.jsonl:3: [b]" in done.stdout
    good = tmp_path / "ok.jsonl"
    good.write_text(json.dumps({"id": "a", "audio": "a.wav"}) + "\n")
    ok = _run("manifest", "validate", str(good))
    assert ok.returncode == 0 and "no problems" in ok.stdout


def test_user_errors_are_one_line_without_traceback(tmp_path):
    done = _run("manifest", "stats", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_validate_empty_manifest_says_what_is_wrong(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    done = _run("manifest", "validate", str(tmp_path / "empty.jsonl"))
    assert done.returncode == 1 and "no utterances" in done.stdout
    assert done.stderr.strip() == f"1 problem(s) in {tmp_path / 'empty.jsonl'}; fix them and rerun"
