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
