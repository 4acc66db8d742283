"""Disk-full and other file-system faults turned into featcache errors.

A full disk (``ENOSPC``) or an exhausted quota (``EDQUOT``) is the user's to fix, not a bug:
:func:`disk_full_is_error` removes the partial files it was told about and raises a one-line
:class:`featcache.errors.DiskFullError` that says what was being written and that rerunning the
same command resumes.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from featcache.errors import DiskFullError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def is_no_space(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) is a disk-full error."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return True
        if isinstance(exc, OSError) and "No space left on device" in str(exc):
            return True  # h5py reports errno inside the message only
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def disk_full_is_error(what: str, cleanup: Iterable[Path] = ()) -> Iterator[None]:
    """Turn a disk-full error inside the block into a :class:`DiskFullError` about ``what``.

    Parameters
    ----------
    what : str
        The file or store being written, named in the message.
    cleanup : iterable of Path
        Partial files or folders to remove before raising.
    """
    try:
        yield
    except Exception as e:
        if not is_no_space(e):
            raise
        for path in map(Path, cleanup):
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        raise DiskFullError(
            f"{what}: no space left on the device; free some space (what was partly written "
            f"was removed) and run the same command again to resume"
        ) from e
