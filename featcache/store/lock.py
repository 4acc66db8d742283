"""One writer per cache folder: an advisory file lock plus a lease file with host and pid.

``CACHE/.featcache.lock`` is held with ``fcntl.flock`` for as long as a command writes the cache;
a second writer on the same machine (or a file system that honours flock) fails at once.
``CACHE/.featcache.lease`` says who holds it (host, pid, command, renewed-at), so the error can
name the other process, and so that writers on hosts of a shared file system where flock is not
shared still see each other: a lease renewed within ``STALE_SECONDS`` by another live process
is respected. A lease of a dead process on this host, or one not renewed for ``STALE_SECONDS``,
is stale and taken over.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from featcache.errors import LockedError

LOCK = ".featcache.lock"
LEASE = ".featcache.lease"
RENEW_SECONDS = 20.0
STALE_SECONDS = 120.0


class CacheLock:
    """The write lock of cache folder ``cache`` (a context manager; ``acquire`` is idempotent)."""

    def __init__(self, cache, command: str = "featcache"):
        self.cache = Path(cache)
        self.command = command
        self._fd: int | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> CacheLock:
        """Take the lock, or raise :class:`LockedError` naming the process that holds it."""
        import fcntl

        if self.held:
            return self
        fd = os.open(self.cache / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LockedError(self._message(read_lease(self.cache))) from None
        lease = read_lease(self.cache)
        # on this host the flock decides (a lease left by a killed process is stale); a live
        # lease of another host means flock is not shared on this file system: respect it
        if lease is not None and lease.get("host") != socket.gethostname() and not is_stale(lease):
            os.close(fd)
            raise LockedError(self._message(lease))
        self._fd = fd
        self._write_lease()
        self._renewer = threading.Thread(target=self._renew, daemon=True)
        self._renewer.start()
        return self

    def release(self) -> None:
        if not self.held:
            return
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        with contextlib.suppress(OSError):
            (self.cache / LEASE).unlink()
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> CacheLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _write_lease(self) -> None:
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")  # noqa: UP017
        lease = {"host": socket.gethostname(), "pid": os.getpid(), "command": self.command,
                 "since": now, "renewed": time.time()}  # fmt: skip
        tmp = self.cache / f"{LEASE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(lease))
        os.replace(tmp, self.cache / LEASE)

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            with contextlib.suppress(OSError):
                self._write_lease()

    def _message(self, lease: dict | None) -> str:
        who = "another process"
        if lease:
            who = (f"process {lease.get('pid')} on host {lease.get('host')} "
                   f"({lease.get('command')}, since {lease.get('since')})")  # fmt: skip
        return (
            f"{self.cache}: cache folder is being written by {who}; wait for it to finish or "
            f"stop it, then run this command again"
        )


class NoLock:
    """The lock of a cache that cannot be locked (a URL cache): taking it does nothing."""

    held = False

    def acquire(self) -> NoLock:
        return self

    def release(self) -> None:
        pass

    def __enter__(self) -> NoLock:
        return self

    def __exit__(self, *exc) -> None:
        pass


def read_lease(cache: Path) -> dict | None:
    try:
        lease = json.loads((Path(cache) / LEASE).read_text())
    except (OSError, ValueError):
        return None
    return lease if isinstance(lease, dict) else None


def is_stale(lease: dict) -> bool:
    """True when the lease's process is gone (this host) or it was not renewed for a while."""
    if lease.get("host") == socket.gethostname():
        return not _alive(int(lease.get("pid", -1)))
    return time.time() - float(lease.get("renewed", 0)) > STALE_SECONDS


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def command_line() -> str:
    """This process's command line, shortened, for the lease."""
    return " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:200]
