"""Task heads: label encoding, head modules, losses, decoding and metrics."""

from featcache.heads.base import Task, masked_mean
from featcache.heads.registry import TASKS, build_task

__all__ = ["TASKS", "Task", "build_task", "masked_mean"]
