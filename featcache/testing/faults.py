"""Fault injection for tests: run the CLI with one function patched to fail at its n-th call.

``python -m featcache.testing.faults SPEC featcache-args...`` where SPEC is
``module:attribute.path:n:kind``; kind ``kill`` sends this process SIGKILL at the n-th call (a
crash at an exact code point), ``enospc`` raises ``OSError(ENOSPC)`` there (a full disk), ``pause`` prints ``paused`` and sleeps
(a long-running writer, for concurrency tests). The
patched attribute is replaced on its owner, so callers that look it up at call time (module
functions, methods) all see it. Used by ``tests/test_faults.py`` and the adversary trials.
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import sys
import time


def install(spec: str) -> None:
    """Patch the function named by ``spec`` (see the module docstring)."""
    module_name, path, n, kind = spec.split(":")
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = {"n": 0}

    def patched(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == int(n):
            if kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if kind == "enospc":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if kind == "pause":  # hold whatever this process holds (its lock) until killed
                print("paused", flush=True)
                time.sleep(600)
            raise ValueError(f"unknown fault kind {kind!r}")
        return original(*args, **kwargs)

    setattr(owner, name, patched)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    install(argv[0])
    from featcache.cli.main import main as cli_main

    cli_main(argv[1:])


if __name__ == "__main__":
    main()
