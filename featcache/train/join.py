"""Joining caches with a manifest: which utterances train, which are left out, and why.

:func:`join_caches` matches the caches' utterances with the manifest's labels and splits (by id)
and reports every utterance it has to leave out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from featcache.errors import ConfigError
from featcache.manifest import SPLITS


@dataclass
class JoinResult:
    """Utterances usable for training, per split, and what was left out and why.

    Attributes
    ----------
    ids : dict
        split name -> utterance ids (manifest order) present in every cache, with a label.
    labels : dict
        utterance id -> label value.
    frames : dict
        utterance id -> number of frames after alignment (of the fastest upstream).
    missing : dict
        upstream name -> ids in the manifest with no frames in that upstream's cache.
    unlabelled : list
        ids without a value for the label field; ``no_split``: ids without a known split.
    """

    ids: dict[str, list[str]]
    labels: dict[str, Any]
    frames: dict[str, int]
    missing: dict[str, list[str]] = field(default_factory=dict)
    unlabelled: list[str] = field(default_factory=list)
    no_split: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """Counts and the first few ids of every group left out (for summary.json)."""
        out: dict[str, Any] = {
            "used": {split: len(ids) for split, ids in self.ids.items()},
            "missing": {u: {"count": len(v), "ids": v[:10]} for u, v in self.missing.items() if v},
        }
        if self.unlabelled:
            out["unlabelled"] = {"count": len(self.unlabelled), "ids": self.unlabelled[:10]}
        if self.no_split:
            out["no_split"] = {"count": len(self.no_split), "ids": self.no_split[:10]}
        return out

    def warnings(self) -> list[str]:
        """One line per group of utterances left out."""
        lines = []
        for upstream, ids in self.missing.items():
            if ids:
                lines.append(
                    f"warning: {len(ids)} utterance(s) have no frames in the cache of {upstream} "
                    f"(e.g. {', '.join(ids[:3])}); they are left out of training and evaluation"
                )
        if self.unlabelled:
            lines.append(
                f"warning: {len(self.unlabelled)} utterance(s) have no label value "
                f"(e.g. {', '.join(self.unlabelled[:3])}); they are left out"
            )
        if self.no_split:
            lines.append(
                f"warning: {len(self.no_split)} utterance(s) have no train/dev/test split "
                f"(e.g. {', '.join(self.no_split[:3])}); they are left out"
            )
        return lines


def join_caches(readers: Sequence, manifest, label: str, split_field: str = "split") -> JoinResult:
    """Match every reader's utterances with the manifest's labels and splits, by id.

    Parameters
    ----------
    readers
        One :class:`CacheReader` per upstream.
    manifest
        A :class:`featcache.manifest.Manifest` holding ``label`` and ``split_field``.
    label
        Label field name.
    split_field
        Field whose values ``train``/``dev``/``test`` split the corpus.
    """
    positions = [{u: i for i, u in enumerate(r.utterances)} for r in readers]
    fastest = max(r.frame_rate for r in readers)
    if all(utt.get(label) is None for utt in manifest):
        raise ConfigError(
            f"label field {label!r} is not in the manifest {manifest.path}; "
            f"its fields are: {', '.join(manifest.fields())} (choose one with --label)"
        )
    result = JoinResult({s: [] for s in SPLITS}, {}, {}, {r.name: [] for r in readers})
    for utt in manifest:
        absent = [r.name for r, pos in zip(readers, positions, strict=True) if utt.id not in pos]
        for name in absent:
            result.missing[name].append(utt.id)
        if absent:
            continue
        value = utt.get(label)
        split = utt.get(split_field)
        if value is None or value == "":
            result.unlabelled.append(utt.id)
            continue
        if split not in SPLITS:
            result.no_split.append(utt.id)
            continue
        result.ids[split].append(utt.id)
        result.labels[utt.id] = value
        result.frames[utt.id] = max(
            int(r.num_frames[pos[utt.id]])
            for r, pos in zip(readers, positions, strict=True)
            if r.frame_rate == fastest
        )
    if not result.ids["train"]:
        raise ConfigError(
            f"no training utterances: none of the manifest's utterances is in every cache "
            f"with {split_field}=train and a {label!r} value; check --split-field and -u"
        )
    return result
