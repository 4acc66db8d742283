"""Tasks by name: the only place task names are written.

A new head is one file with a :class:`~featcache.heads.base.Task` subclass plus one
``TASKS.register`` entry here (``tests/test_registries.py`` shows it); ``featcache train --task``
and recipe validation read the names from :data:`TASKS`. Reading it imports no torch.
"""

from __future__ import annotations

from featcache.registry import Registry

TASKS = Registry("task", "--task")
TASKS.register(
    "classify", "utterance classification: linear 256, masked mean pooling, linear (accuracy)",
    "featcache.heads.classify:ClassifyTask", default=True,
)  # fmt: skip
TASKS.register(
    "ctc", "character CTC ASR: 2-layer BiLSTM, greedy decoding (WER, CER)",
    "featcache.heads.ctc:CTCTask",
)  # fmt: skip


def build_task(name: str, label: str):
    """The task ``name`` (a :class:`~featcache.heads.base.Task`) reading labels from ``label``."""
    entry = TASKS.get(name)
    task = entry.load()(label)
    task.name = entry.name
    return task
