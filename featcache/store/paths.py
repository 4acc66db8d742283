"""Names and clean-up of the files around a store (its work folder, temporary parts)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from featcache.store.location import RemoteDir


def work_dir(path: Path) -> Path:
    """Scratch folder beside a store, holding its plan and temporary parts."""
    return path.with_name(path.name + ".work")


def store_exists(path) -> bool:
    """True if a store is at ``path``. On object storage: its root ``zarr.json`` exists (some
    servers keep empty "folders" after their objects are deleted, so a prefix proves nothing)."""
    return (path / "zarr.json").exists() if isinstance(path, RemoteDir) else path.exists()


def has_work(path) -> bool:
    """True while a build of the store at ``path`` is unfinished (its work folder or plan exists)."""
    work = work_dir(path)
    return (work / "plan.json").exists() if isinstance(path, RemoteDir) else work.exists()


def remove_path(path: Path) -> None:
    """Remove a file or folder (on object storage: every object under the prefix) if it exists."""
    if isinstance(path, RemoteDir):
        path.rmtree()
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def tmp_name(k: int) -> str:
    """A unique temporary name for part ``k`` written by this process."""
    return f"tmp-{k}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
