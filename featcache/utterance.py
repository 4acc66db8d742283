"""One manifest entry (:class:`Utterance`) and one defect found in a manifest (:class:`Problem`).

The types :mod:`featcache.manifest` (the collection) and :mod:`featcache.manifest_parse` (lines
to entries) share; both are re-exported by :mod:`featcache.manifest`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RESERVED = ("id", "audio", "start", "duration", "channel", "split")  # all other keys are fields


@dataclass(frozen=True)
class Utterance:
    """One manifest entry. ``audio`` is absolute; ``fields`` holds every non-reserved key.

    Picklable (it travels to extraction workers); treat ``fields`` as read-only.
    """

    id: str
    audio: str
    start: float = 0.0
    duration: float | None = None
    channel: int | None = None
    split: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0

    def get(self, name: str, default: Any = None) -> Any:
        """A reserved attribute (``split``, ``start``, ...) or a label field, else ``default``."""
        if name in RESERVED:
            value = getattr(self, name)
            return default if value is None else value
        return self.fields.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this entry (absolute audio path; optional keys only when set)."""
        out: dict[str, Any] = {"id": self.id, "audio": self.audio}
        if self.start:
            out["start"] = self.start
        for key in ("duration", "channel", "split"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(self.fields)
        return out


@dataclass(frozen=True)
class Problem:
    """One defect found in a manifest, printed as ``FILE:LINE: [id] message``."""

    path: str
    line: int
    utt_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        who = f" [{self.utt_id}]" if self.utt_id else ""
        return f"{where}:{who} {self.message}"
