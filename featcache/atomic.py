"""Atomic file writes: a reader sees the old file or the whole new one, never half of it.

Every file featcache writes that a later step trusts (manifest copies, plans, stage outputs,
"done" markers, checkpoints, HDF5 stores) goes through :func:`write_atomic` or
:func:`replacing`: the data lands in a temporary name in the same folder, is flushed and
fsynced, then renamed over the target (``os.replace`` is atomic on POSIX and Windows), and the
folder is fsynced so the rename survives a power cut.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

Writer = Callable[[IO[bytes]], Any]


def write_atomic(path, data: bytes | str | Writer) -> Path:
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
        Target file; its folder is created if needed.
    data : bytes, str or callable
        The content (str is UTF-8 encoded), or a function that writes into the open binary
        file it is given (e.g. ``lambda f: torch.save(obj, f)``).

    Returns
    -------
    Path
    """
    path = Path(path)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def write_json(path, obj, **dumps) -> Path:
    """:func:`write_atomic` of ``json.dumps(obj, **dumps)`` plus a final newline."""
    return write_atomic(path, json.dumps(obj, **dumps) + "\n")


@contextlib.contextmanager
def replacing(path) -> Iterator[Path]:
    """A temporary path beside ``path``; on success it is fsynced and renamed onto ``path``.

    For libraries that write a file by name (h5py). On an exception the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def commit(tmp, path) -> None:
    """Rename the finished file ``tmp`` onto ``path`` durably (fsync, rename, fsync folder).

    ``tmp`` must be on the same file system as ``path`` (a scratch folder beside it will do).
    """
    _fsync(Path(tmp))
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


def fsync_dir(folder) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync(file: Path) -> None:
    with open(file, "rb+") as f:
        os.fsync(f.fileno())


def read_json(path, fix: str = "delete it and rerun the command that wrote it"):
    """Read a JSON file featcache wrote; a damaged one is a one-line ConfigError saying ``fix``."""
    from featcache.errors import ConfigError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: does not exist; {fix}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e}); {fix}") from None
