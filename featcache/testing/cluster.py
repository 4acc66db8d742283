"""Faults for scale-out tests: a dask worker plugin that SIGKILLs its worker in the middle of a part.

>>> client.register_plugin(KillMidPart(store_url, once_file))   # doctest: +SKIP

The first worker to start its second part dies as soon as that part's first object exists in
the store (``parts/<k>/frames/zarr.json``; the frames follow, its marker comes last), so the part
is half written. ``once_file`` (created exclusively) makes exactly one worker die once, even
after its nanny restarts it with the plugin; it holds the killed process's pid.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

from distributed import WorkerPlugin

PART_KEY = re.compile(r"featcache-.*-part-(\d+)-")


class KillMidPart(WorkerPlugin):
    """SIGKILL this worker while it writes its second part (one worker, once).

    Parameters
    ----------
    store : str
        URL (or folder) of the store being written.
    once_file : str
        Created by the worker that dies, holding its pid; while it exists nobody else dies.
    storage_options : dict, optional
        For the store's URL.
    """

    name = "featcache-kill-mid-part"

    def __init__(self, store: str, once_file: str, storage_options: dict | None = None):
        self.store = store
        self.once_file = once_file
        self.storage_options = storage_options or {}
        self.started = 0

    def setup(self, worker) -> None:
        self.started = 0

    def transition(self, key, start, finish, **kwargs) -> None:
        match = PART_KEY.match(str(key))
        if finish != "executing" or match is None:
            return
        self.started += 1
        if self.started == 2 and not Path(self.once_file).exists():
            k = int(match.group(1))
            threading.Thread(target=self._kill_when_begun, args=(k,), daemon=True).start()

    def _kill_when_begun(self, k: int) -> None:
        from featcache.store.location import as_location

        first = as_location(self.store, self.storage_options or None) / "parts" / str(k)
        deadline = time.monotonic() + 30
        while not (first / "frames" / "zarr.json").exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        try:
            fd = os.open(self.once_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()} {k}".encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
