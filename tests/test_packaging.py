"""The wheel installs exactly one top-level name, featcache, with cli/ and pipelines/ inside it."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest


@pytest.mark.slow
def test_wheel_contents(tmp_path, repo_root):
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
         str(repo_root)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("featcache-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"featcache"}
    for expected in (
        "featcache/__init__.py",
        "featcache/cli/main.py",
        "featcache/cli/manifest.py",
        "featcache/pipelines/__init__.py",
        "featcache/manifest.py",
        "featcache/audio.py",
        "featcache/pipelines/recipes/demo.toml",
        "featcache/pipelines/recipes/superb-er.toml",
    ):
        assert expected in names
    assert not any(n.startswith(("cli/", "pipelines/", "tests/")) for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "featcache = featcache.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()
    # every package the source tree has is in the wheel (no forgotten subpackage)
    src = {
        p.parent.relative_to(repo_root).as_posix()
        for p in repo_root.glob("featcache/**/__init__.py")
    }
    for pkg in src:
        assert f"{pkg}/__init__.py" in names, f"{pkg} missing from the wheel"
