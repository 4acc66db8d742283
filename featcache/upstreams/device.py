"""Device placement, optional autocast and host-to-device transfers for upstream forwards.

The exact path is float32 on the chosen device. ``autocast`` (float16/bfloat16) is an explicit
option only: it changes the layers by more than float16 storage rounding for some models, so the
choice is recorded in the upstream's policy and the store's attrs.
"""

from __future__ import annotations

import contextlib
import re

from featcache.errors import ConfigError
from featcache.registry import Registry

AUTOCASTS = Registry("autocast dtype", "--autocast")
AUTOCASTS.register("float16", "float16 autocast (GPU; faster, not exact)")
AUTOCASTS.register("bfloat16", "bfloat16 autocast (GPU; faster, not exact)")


def resolve_device(device="auto"):
    """Turn a device option into a :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (the first CUDA device if there is one, else CPU), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``.

    Returns
    -------
    torch.device

    Raises
    ------
    ConfigError
        For an unknown device string, or a CUDA device on a machine without CUDA (or without
        device N).
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    text = str(device).strip().lower()
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise ConfigError(
            f"unknown device {device!r}; use auto, cpu, cuda or cuda:N (e.g. --device cuda:0)"
        )
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} was requested but this torch build or machine has no CUDA "
            f"(torch {torch.__version__}); use --device cpu or --device auto"
        )
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            f"device {device!r} does not exist: this machine has {count} CUDA device(s) "
            f"(cuda:0 .. cuda:{count - 1})"
        )
    return torch.device("cuda", index)


def resolve_autocast(autocast):
    """Check an autocast option and return the torch dtype, or None for exact float32.

    Parameters
    ----------
    autocast : str or None
        None / ``"float32"`` (exact, default), ``"float16"`` or ``"bfloat16"``.
    """
    import torch

    if autocast in (None, "", "none", "float32", "fp32"):
        return None
    if autocast not in AUTOCASTS:
        raise ConfigError(
            f"unknown autocast dtype {autocast!r}; use {', '.join(AUTOCASTS)} or leave it unset "
            f"(exact float32)"
        )
    # CPU and CUDA autocast both accept both dtypes (torch>=2.3, the declared minimum)
    return getattr(torch, autocast)


def autocast_context(device, dtype):
    """A context that runs the forward under autocast with ``dtype``, or does nothing if None."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(array, device):
    """Copy a host tensor to ``device``: pinned memory and a non-blocking copy for CUDA.

    On CPU the tensor is returned as is (no copy).
    """
    if device.type == "cpu":
        return array
    return array.pin_memory().to(device, non_blocking=True)


def host_buffer(shape, device, dtype=None):
    """A zero-filled host tensor to assemble a batch in, pinned when the target is CUDA."""
    import torch

    dtype = dtype or torch.float32
    return torch.zeros(shape, dtype=dtype, pin_memory=device.type == "cuda")
