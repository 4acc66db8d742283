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
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featcache.errors import ManifestError

RESERVED = ("id", "audio", "start", "duration", "channel", "split")
SPLITS = ("train", "dev", "test")  # the split values the later stages use
SPLIT_ALIASES = {"valid": "dev", "validation": "dev", "val": "dev", "development": "dev",
                 "eval": "test", "training": "train"}  # fmt: skip
SPLITS = ("train", "dev", "test")


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
        utterances, problems = _parse(path)
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
            utt, errs = _utterance(dict(rec), Path(root), i, "<records>")
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
    utterances, problems = _parse(path)
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


# --- parsing ---------------------------------------------------------------------------------
def _read_lines(path: Path) -> list[bytes]:
    """The raw lines of a manifest (gunzipped); a UTF-8 byte-order mark is dropped."""
    if path.is_dir():
        raise ManifestError(
            f"manifest {path} is a folder; give the .jsonl file inside it "
            f"(e.g. {path / 'manifest.jsonl'})"
        )
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as e:
        raise ManifestError(f"cannot read manifest {path}: {e}") from None
    if b"\0" in data[:4096]:
        raise ManifestError(
            f"manifest {path} holds binary data, not JSON lines; give the .jsonl manifest"
        )
    if data.startswith(b"\xef\xbb\xbf"):  # written by some Windows editors
        data = data[3:]
    return data.split(b"\n")


def _parse(path: Path) -> tuple[list[Utterance], list[Problem]]:
    """Parse every line, collecting all structural problems instead of stopping at the first."""
    if not path.exists():
        raise ManifestError(f"manifest {path} not found; check the path")
    utterances: list[Utterance] = []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    root = path.resolve().parent
    for number, raw in enumerate(_read_lines(path), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(
                Problem(
                    str(path),
                    number,
                    None,
                    f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                    "save the manifest as UTF-8",
                )
            )
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(Problem(str(path), number, None, f"bad JSON ({e.msg})"))
            continue
        if not isinstance(record, dict):
            problems.append(Problem(str(path), number, None, "line is not a JSON object"))
            continue
        utt, errs = _utterance(record, root, number, str(path))
        problems.extend(errs)
        if utt is None:
            continue
        if utt.id in first_line:
            problems.append(
                Problem(
                    str(path),
                    number,
                    utt.id,
                    f"duplicate id (first on line {first_line[utt.id]}); ids must be unique",
                )
            )
            continue
        first_line[utt.id] = number
        utterances.append(utt)
    if not utterances and not problems:
        problems.append(Problem(str(path), 0, None, "manifest has no utterances"))
    return utterances, problems


def _utterance(
    record: dict[str, Any], root: Path, line: int, path: str
) -> tuple[Utterance | None, list[Problem]]:
    """Turn one JSON object into an Utterance, or report what is wrong with it."""
    problems: list[Problem] = []

    def bad(message: str, utt_id: str | None = None) -> None:
        problems.append(Problem(path, line, utt_id, message))

    utt_id = record.get("id")
    if utt_id is None or (isinstance(utt_id, str) and not utt_id.strip()):
        bad("missing required field 'id'")
        return None, problems
    if not isinstance(utt_id, (str, int)) or isinstance(utt_id, bool):
        bad(f"'id' must be a string, got {type(utt_id).__name__}")
        return None, problems
    utt_id = str(utt_id)
    audio = record.get("audio")
    if not isinstance(audio, str) or not audio.strip():
        bad("missing required field 'audio' (a path to an audio file)", utt_id)
        return None, problems
    audio_path = Path(os.path.expanduser(audio))
    if not audio_path.is_absolute():
        audio_path = root / audio_path
    start = _number(record, "start", 0.0, bad, utt_id)
    duration = _number(record, "duration", None, bad, utt_id)
    if start is not None and start < 0:
        bad(f"negative 'start' ({start}); segments start at 0 or later", utt_id)
    if duration is not None and duration <= 0:
        bad(f"'duration' must be positive, got {duration}", utt_id)
    channel = record.get("channel")
    if channel is not None and (
        not isinstance(channel, int) or isinstance(channel, bool) or channel < 0
    ):
        bad(f"'channel' must be a non-negative integer, got {channel!r}", utt_id)
    split = record.get("split")
    if split is not None and not isinstance(split, str):
        bad(f"'split' must be a string such as train/dev/test, got {split!r}", utt_id)
    if problems:
        return None, problems
    fields = {k: v for k, v in record.items() if k not in RESERVED}
    utt = Utterance(
        id=utt_id,
        audio=str(audio_path.resolve() if audio_path.exists() else audio_path),
        start=float(start or 0.0),
        duration=None if duration is None else float(duration),
        channel=channel,
        split=split,
        fields=fields,
        line=line,
    )
    return utt, problems


def _number(record, key, default, bad, utt_id):
    value = record.get(key, default)
    if value is default:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        bad(f"'{key}' must be a number of seconds, got {value!r}", utt_id)
        return default
    return float(value)
