"""Names and clean-up of the files around a store (its work folder, temporary parts)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def work_dir(path: Path) -> Path:
    """Scratch folder beside a store, holding its plan and temporary parts."""
    return path.with_name(path.name + ".work")


def remove_path(path: Path) -> None:
    """Remove a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def tmp_name(k: int) -> str:
    """A unique temporary name for part ``k`` written by this process."""
    return f"tmp-{k}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
