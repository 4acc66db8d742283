"""Manifests: one JSON object per line, one utterance per object (DESIGN.md, Manifests).

Required keys are ``id`` (unique) and ``audio`` (a path; relative paths resolve against the
manifest's folder). Optional: ``start`` and ``duration`` in seconds (a segment of a longer
recording), ``channel`` (0-based; absent = downmix), ``split`` (train/dev/test), and any label field
(``text``, ``speaker``, ...). Files may be gzip-compressed (``.jsonl.gz``).

Example
-------
>>> m = Manifest.load("data/manifest.jsonl")          # doctest: +SKIP
>>> train = m.split("train")                           # doctest: +SKIP
>>> speakers = train.labels("speaker")                 # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from featcache.errors import ManifestError
from featcache.manifest_parse import parse_file, parse_record
from featcache.registry import Registry
from featcache.utterance import RESERVED, Problem, Utterance

__all__ = ["RESERVED", "SPLITS", "Manifest", "Problem", "Utterance", "validate_manifest",
           "write_manifest"]  # fmt: skip

SPLITS = Registry("split", "--split")  # the split values train, probe and evaluate use
SPLITS.register("train", "what models and probes are fitted on")
SPLITS.register("dev", "model selection: the best epoch, early stopping")
SPLITS.register("test", "the held-out score", default=True)
SPLIT_ALIASES = {"valid": "dev", "validation": "dev", "val": "dev", "development": "dev",
                 "eval": "test", "training": "train"}  # fmt: skip


class Manifest:
    """An ordered collection of utterances with unique ids."""

    def __init__(self, utterances: Iterable[Utterance], path: str | os.PathLike | None = None):
        self.utterances: list[Utterance] = list(utterances)
        # a str or path-like names a local file; a cache's URL (RemoteDir) is kept as it is
        self.path = Path(path) if isinstance(path, str | os.PathLike) else path
        self._by_id = {u.id: u for u in self.utterances}
        if len(self._by_id) != len(self.utterances):
            seen: set[str] = set()
            dup = next(u for u in self.utterances if u.id in seen or seen.add(u.id))
            raise ManifestError(f"{self.path or 'manifest'}:{dup.line}: duplicate id {dup.id!r}")

    # --- reading -----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> Manifest:
        """Read a manifest; raise :class:`ManifestError` listing every structural problem.

        Audio files are not opened here; :func:`validate_manifest` does that.
        """
        path = Path(path)
        utterances, problems = parse_file(path)
        if problems:
            shown = "; ".join(str(p) for p in problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ManifestError(
                f"{len(problems)} problem(s) in manifest {path}: {shown}{more}; "
                f"run `featcache manifest validate {path}` for the full list"
            )
        return cls(utterances, path)

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], root: str | os.PathLike = "."
    ) -> Manifest:
        """Build a manifest from dicts (relative audio paths resolve against ``root``)."""
        utterances, problems = [], []
        for i, rec in enumerate(records, start=1):
            utt, errs = parse_record(dict(rec), Path(root), i, "<records>")
            problems.extend(errs)
            if utt is not None:
                utterances.append(utt)
        if problems:
            raise ManifestError(f"invalid records: {problems[0]}")
        return cls(utterances)

    # --- collection --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)

    def __getitem__(self, utt_id: str) -> Utterance:
        try:
            return self._by_id[utt_id]
        except KeyError:
            raise KeyError(f"utterance {utt_id!r} is not in manifest {self.path}") from None

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._by_id

    def ids(self) -> list[str]:
        return [u.id for u in self.utterances]

    def split(self, *names: str) -> Manifest:
        """The utterances whose ``split`` is one of ``names`` (order kept)."""
        wanted = set(names)
        return Manifest((u for u in self.utterances if u.split in wanted), self.path)

    def subset(self, ids: Iterable[str]) -> Manifest:
        """The utterances with the given ids, in manifest order."""
        wanted = set(ids)
        return Manifest((u for u in self.utterances if u.id in wanted), self.path)

    def labels(self, name: str) -> list[Any]:
        """The value of field ``name`` for every utterance (None where missing)."""
        return [u.get(name) for u in self.utterances]

    def fields(self) -> list[str]:
        """Label fields present in at least one utterance, in first-seen order."""
        seen: dict[str, None] = {}
        for u in self.utterances:
            seen.update(dict.fromkeys(u.fields))
        return list(seen)

    # --- writing -----------------------------------------------------------------------------
    def to_jsonl(self) -> bytes:
        """Canonical bytes: one sorted-key JSON object per line, absolute audio paths."""
        lines = (json.dumps(u.to_dict(), sort_keys=True, ensure_ascii=False) for u in self)
        return "".join(line + "\n" for line in lines).encode("utf-8")

    def sha256(self) -> str:
        """sha256 of :meth:`to_jsonl`; stores record it to detect a changed manifest."""
        return hashlib.sha256(self.to_jsonl()).hexdigest()

    def write(self, path: str | os.PathLike) -> Path:
        """Write the canonical JSONL atomically (temporary file, then rename)."""
        return _write(Path(path), self.to_jsonl())


def write_manifest(records: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write dicts as a manifest, keeping relative audio paths as given (atomic)."""
    lines = (json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records)
    return _write(Path(path), "".join(lines).encode("utf-8"))


def _write(path: Path, data: bytes) -> Path:
    """Write manifest bytes atomically, gzip-compressed for a ``.gz`` name (reproducibly)."""
    from featcache.atomic import write_atomic

    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    return write_atomic(path, data)


def validate_manifest(path: str | os.PathLike, check_audio: bool = True) -> list[Problem]:
    """Every problem of a manifest, in line order: structure, then (optionally) each audio file.

    Audio checks: the file exists, decodes, is not empty, the channel exists, and the segment
    (``start``, ``duration``) lies inside the recording.
    """
    path = Path(path)
    if not path.exists():
        return [Problem(str(path), 0, None, "manifest file not found")]
    utterances, problems = parse_file(path)
    for utt in utterances:
        if utt.split is not None and utt.split not in SPLITS:
            hint = SPLIT_ALIASES.get(utt.split.lower())
            fix = f"rename it {hint!r}" if hint else f"use one of {', '.join(SPLITS)}"
            problems.append(Problem(str(path), utt.line, utt.id,
                                    f"split {utt.split!r} is not one of {'/'.join(SPLITS)}, which "
                                    f"train, probe and evaluate use; {fix}"))  # fmt: skip
    if check_audio:
        from featcache.audio import AudioInfoCache

        infos = AudioInfoCache()
        for utt in utterances:
            message = infos.check(utt)
            if message:
                problems.append(Problem(str(path), utt.line, utt.id, message))
    problems.sort(key=lambda p: p.line)
    return problems
