"""The wheel installs exactly one top-level name, featcache, with cli/ and pipelines/ inside it."""

from __future__ import annotations

import re
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


@pytest.mark.parametrize("torch", ["cpu", "gpu", "auto"])
def test_make_setup_installs_the_chosen_torch_build(tmp_path, repo_root, torch):
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    plan = subprocess.run(
        ["make", "-n", "setup", f"TORCH={torch}", f"VENV={tmp_path / 'venv'}"],
        cwd=repo_root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    has_gpu = subprocess.run("nvidia-smi -L 2>/dev/null | grep -q GPU", shell=True).returncode == 0
    build = {"cpu": "cpu", "gpu": "gpu", "auto": "gpu" if has_gpu else "cpu"}[torch]
    assert f"torch 2.13.0: the {build} build (TORCH={torch}" in plan
    cpu_index = "--index-url https://download.pytorch.org/whl/cpu"
    assert (cpu_index in plan) == (build == "cpu")  # the CUDA build comes from the public index
    assert re.search(r"apt-get install -y -q[\s\\]*--no-install-recommends espeak-ng", plan)
    bad = subprocess.run(["make", "-n", "setup", "TORCH=rocm"], cwd=repo_root,
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and "TORCH must be auto, cpu or gpu" in bad.stderr
