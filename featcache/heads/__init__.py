"""Task heads: label encoding, head modules, losses, decoding and metrics.

:data:`TASKS` lists the names, :func:`build_task` builds one; importing this package imports
no torch.
"""

from featcache.heads.registry import TASKS, build_task

__all__ = ["TASKS", "Task", "build_task", "masked_mean"]


def __getattr__(name):
    if name in ("Task", "masked_mean"):
        from featcache.heads import base

        return getattr(base, name)
    raise AttributeError(f"module 'featcache.heads' has no attribute {name!r}")
