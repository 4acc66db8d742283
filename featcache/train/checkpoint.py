"""Checkpoints: tensors and plain values only, written atomically, loaded without running code.

A checkpoint is a ``torch.save`` file of dicts, lists, tuples, numbers, strings and tensors; it
is read with ``torch.load(weights_only=True)``, whose unpickler rebuilds only those types, so a
run folder from elsewhere cannot execute code through ``best.pt`` or ``last.pt`` (a plain
``pickle`` load runs whatever a crafted file's ``__reduce__`` names). RNG states are converted
to such values here (numpy's state is a tuple holding an ndarray).
"""

from __future__ import annotations

import io
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featcache.atomic import write_atomic
from featcache.errors import CheckpointError
from featcache.oserrors import disk_full_is_error


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` into a temporary file, then rename: a kill never leaves half a file.

    The checkpoint is serialised in memory and written with plain file writes, so a full disk
    is an ``OSError`` (torch's zip writer reports it as a bare RuntimeError): it raises
    :class:`featcache.errors.DiskFullError`; the temporary file is removed and the previous
    checkpoint stays as it was.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with disk_full_is_error(str(path)):
        write_atomic(path, lambda f: _write_bytes(f, buffer.getbuffer()))


def _write_bytes(file, data) -> None:
    file.write(data)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_atomic`, refusing anything but plain data.

    Raises
    ------
    CheckpointError
        The file holds other objects (it did not come from featcache and is not loaded), or it
        is damaged.
    """
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols first
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused to load: it holds objects other than tensors and plain values "
            f"({_unpickler_reason(e)}); featcache never writes such files, so do not trust "
            f"this run folder"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path}: damaged or not a checkpoint ({type(e).__name__}: {str(e)[:160]}); "
            f"delete it and train again"
        ) from None


def _unpickler_reason(error: Exception) -> str:
    """The line of torch's long weights-only message that says what was refused."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    found = [line for line in lines if line.startswith(("Unsupported", "Trying to"))]
    return (found or lines or [type(error).__name__])[0][:160]


def rng_state() -> dict[str, Any]:
    """Every RNG state a resume restores, as tensors and plain values."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),  # (version, tuple of ints, gauss_next)
        "numpy": {
            "kind": str(kind),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    numpy = state["numpy"]
    key = numpy["key"].numpy().astype(np.uint32)
    np.random.set_state(
        (numpy["kind"], key, numpy["pos"], numpy["has_gauss"], numpy["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
