"""Tasks by name. A new head is a file with a :class:`Task` subclass plus one entry here."""

from __future__ import annotations

from featcache.errors import ConfigError
from featcache.heads.base import Task
from featcache.heads.classify import ClassifyTask
from featcache.heads.ctc import CTCTask

TASKS: dict[str, type[Task]] = {
    "classify": ClassifyTask,
    "ctc": CTCTask,
}


def build_task(name: str, label: str) -> Task:
    """The task ``name`` (``classify``, ``ctc``) reading labels from the field ``label``."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; use one of {', '.join(sorted(TASKS))}")
    return TASKS[name](label)
