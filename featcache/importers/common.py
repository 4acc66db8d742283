"""Helpers shared by the importers: located errors, Kaldi-style tables, path resolution, id checks.

Every importer returns plain dicts (one per utterance, manifest keys) with *absolute* audio paths;
:func:`featcache.importers.import_manifest` makes them relative to the output file where it can.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from featcache.errors import ManifestError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


def located(path: str | os.PathLike, line: int | None, message: str) -> ManifestError:
    """A :class:`ManifestError` whose one-line message starts with ``FILE:LINE:``."""
    where = f"{path}:{line}" if line else f"{path}"
    return ManifestError(f"{where}: {message}")


def open_text(path: Path):
    """Open a text file for reading, transparently gunzipping ``*.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` for every non-blank line, newline stripped; errors name the file."""
    try:
        with open_text(path) as f:
            for number, text in enumerate(f, start=1):
                text = text.rstrip("\r\n")
                if text.strip():
                    yield number, text
    except UnicodeDecodeError as e:
        raise located(path, None, f"not UTF-8 text ({e.reason}); convert it to UTF-8") from None
    except OSError as e:
        raise located(path, None, f"cannot read ({e.strerror or e})") from None


def read_table(path: Path, min_fields: int = 2) -> Iterator[tuple[int, str, str]]:
    """Kaldi-style ``KEY REST`` lines as ``(line, key, rest)``; ``rest`` may be empty when allowed.

    Raises a located :class:`ManifestError` for a line with fewer than ``min_fields`` fields.
    """
    for number, text in read_lines(path):
        parts = text.strip().split(maxsplit=1)
        if len(parts) < min_fields:
            raise located(path, number, f"expected 'KEY VALUE', got {text.strip()!r}")
        yield number, parts[0], parts[1].strip() if len(parts) > 1 else ""


def read_map(path: Path, allow_empty: bool = False) -> dict[str, tuple[int, str]]:
    """A Kaldi table as ``key -> (line, value)``; a repeated key is an error naming both lines."""
    table: dict[str, tuple[int, str]] = {}
    for number, key, value in read_table(path, min_fields=1 if allow_empty else 2):
        if key in table:
            raise located(
                path, number, f"key {key!r} repeats line {table[key][0]}; keys are unique"
            )
        table[key] = (number, value)
    return table


class IdSet:
    """Remembers where each utterance id came from, to report a duplicate with both places."""

    def __init__(self) -> None:
        self._where: dict[str, str] = {}

    def add(self, utt_id: str, path: str | os.PathLike, line: int | None) -> None:
        where = f"{path}:{line}" if line else str(path)
        if utt_id in self._where:
            raise ManifestError(
                f"{where}: duplicate utterance id {utt_id!r} (first at {self._where[utt_id]}); "
                "ids must be unique"
            )
        self._where[utt_id] = where


def resolve_audio(path: str, bases: Sequence[Path]) -> str:
    """Absolute form of ``path``: as is when absolute, else the first base where it exists.

    When it exists under no base, it is resolved against the first base, so that
    ``featcache manifest validate`` reports the missing file with a meaningful path.
    """
    p = Path(os.path.expanduser(path))
    if p.is_absolute():
        return str(p)
    for base in bases:
        if (base / p).exists():
            return str((base / p).resolve())
    return str((bases[0] / p).absolute())


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a :class:`ManifestError` saying what was expected."""
    if not path.is_dir():
        raise ManifestError(f"{path}: not a folder; expected {what}")
    return path


def audio_files(root: Path, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """Audio files under ``root`` (recursive), sorted by relative path; hidden files skipped."""
    wanted = {e.lower() for e in extensions}
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in wanted:
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def split_of(name: str) -> str | None:
    """``train`` / ``dev`` / ``test`` from a subset name such as ``train-clean-100``."""
    lowered = name.lower()
    for prefix, split in (("train", "train"), ("dev", "dev"), ("valid", "dev"), ("test", "test")):
        if lowered.startswith(prefix):
            return split
    return None
