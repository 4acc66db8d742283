"""A cache folder's copy of its manifest, and which new manifests the stores still fit.

``CACHE/manifest.jsonl`` is the manifest every store of the folder was built from (each store's
attrs hold its sha256). A new manifest fits when it only adds utterances or changes labels,
splits or order: fields other than :data:`AUDIO_FIELDS` do not change frames.
:class:`featcache.store.Cache` asks this module; it does not decide anything itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from featcache.errors import StoreNotFoundError
from featcache.store.location import is_remote

MANIFEST = "manifest.jsonl"
# manifest fields that decide an utterance's frames; any other field is a label
AUDIO_FIELDS = ("audio", "start", "duration", "channel")


def read_copy(file):
    """The manifest copy at ``file`` (a local path or a URL's :class:`RemoteDir`) as a Manifest."""
    from featcache.manifest import Manifest

    if not file.exists():
        raise StoreNotFoundError(f"{file}: cache folder has no manifest copy; pass --manifest")
    if not is_remote(file):
        return Manifest.load(file)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="featcache-manifest-") as tmp:
        local = Path(tmp) / MANIFEST  # the copy holds absolute audio paths: no folder to keep
        local.write_bytes(file.read_bytes())
        manifest = Manifest.load(local)
    manifest.path = file
    return manifest


def copy_sha256(file) -> str | None:
    """sha256 of the copy's bytes (equal to ``Manifest.sha256()``), or None without a copy."""
    if not file.exists():
        return None
    return hashlib.sha256(file.read_bytes()).hexdigest()


def audio_changes(old, new) -> tuple[list[str], list[str]]:
    """What ``new`` does to the utterances of ``old`` that their frames depend on.

    Returns
    -------
    removed, changed : (list of str, list of str)
        Ids of ``old`` missing from ``new``; and, for each utterance whose
        :data:`AUDIO_FIELDS` differ, ``"'id' (line N: fields)"`` with its line in ``new``.
    """
    removed = [u.id for u in old if u.id not in new]
    changed = []
    for u in old:
        if u.id not in new:
            continue
        a, b = u.to_dict(), new[u.id].to_dict()
        keys = sorted(k for k in AUDIO_FIELDS if a.get(k) != b.get(k))
        if keys:
            changed.append(f"{u.id!r} (line {new[u.id].line}: {', '.join(keys)})")
    return removed, changed
