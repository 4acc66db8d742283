"""What makes two training commands the same run, judged from content rather than path strings.

A run folder keeps ``identity.json``: the options that change what is computed, each upstream's
store identity (source, config hash, revision, kept layers, dtype), a sha256 over the
``(split, id, label)`` triples the run trains and selects on, and the label encoding (the task's
label set, in index order). Resuming (or finding a finished run) compares the new command's
identity with it; the same run given by an absolute path, a relative one, or from a moved folder
has the same identity, while a manifest whose labels or splits changed does not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

# where things are, not what they are: a resume may change them
PATH_OPTIONS = ("cache", "out", "manifest", "upstreams")
# how the run executes (or where it reads from), not what it computes; storage_options may
# hold credentials, which never go into identity.json
EXECUTION_ONLY = ("num_workers", "save_every", "threads", "progress", "pooled", "cache_in_memory",
                  "storage_options", "chunk_cache")  # fmt: skip
FILE = "identity.json"


def run_identity(config, readers, joined, task) -> dict[str, Any]:
    """The identity of a training command (see the module docstring)."""
    skip = (*PATH_OPTIONS, *EXECUTION_ONLY)
    options = {k: v for k, v in config.to_dict().items() if k not in skip}
    upstreams = []
    for reader in readers:
        up = reader.attrs.get("upstream", {})
        upstreams.append({"store": reader.name, "source": up.get("source"),
                          "config_sha256": up.get("config_sha256"), "revision": up.get("revision"),
                          "layers": list(reader.layers), "dtype": reader.attrs.get("dtype")})  # fmt: skip
    triples = [
        [split, u, joined.labels[u]] for split in sorted(joined.ids) for u in joined.ids[split]
    ]
    labels = hashlib.sha256(json.dumps(triples, default=str).encode()).hexdigest()
    identity = {"options": options, "upstreams": upstreams, "labels_and_splits_sha256": labels,
                "label_encoding": task.state()}  # fmt: skip
    return json.loads(json.dumps(identity, default=str))  # as identity.json will read back


def identity_change(old: dict, new: dict) -> str | None:
    """Which field differs between two identities, in words (None when they agree)."""
    for key in ("options", "upstreams"):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            names = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            return f"option(s) {', '.join(names)}"
        return f"upstreams ({_short(a)} -> {_short(b)})"
    if old.get("labels_and_splits_sha256") != new.get("labels_and_splits_sha256"):
        return "the labels or splits of the manifest (labels_and_splits_sha256)"
    if old.get("label_encoding") != new.get("label_encoding"):
        return "the label encoding (label set)"
    return None


def read_identity(run: Path) -> dict | None:
    file = Path(run) / FILE
    return json.loads(file.read_text()) if file.exists() else None


def is_run_folder(folder: Path) -> bool:
    """True when ``folder`` holds a featcache training run (its config.json, or identity.json)."""
    folder = Path(folder)
    if (folder / FILE).is_file():
        return True
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and {"cache", "interface", "task", "label"} <= config.keys()


def _short(value) -> str:
    return json.dumps(value, default=str)[:120]
