"""Names the analysis stage takes: probe tasks and the level probes and CKA read features at.

The only place these names are written; ``featcache probe|similarity|select`` read their choices
from here. Reading it imports no scikit-learn.
"""

from __future__ import annotations

from featcache.registry import Registry

PROBE_TASKS = Registry("probe task", "--task")
PROBE_TASKS.register(
    "auto", "regress for numeric labels with many non-integer values, else classify", default=True
)
PROBE_TASKS.register("classify", "logistic regression, accuracy")
PROBE_TASKS.register("regress", "ridge regression, R^2")

LEVELS = Registry("feature level", "--level")
LEVELS.register("pooled", "one per-layer mean per utterance", default=True)
LEVELS.register("frames", "sampled frames of every utterance")
