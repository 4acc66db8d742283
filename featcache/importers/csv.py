"""CSV (or TSV) tables: a header row, then one utterance per row.

Required columns: ``id`` and ``audio`` (``path`` is accepted for ``audio``). ``start``,
``duration`` (seconds) and ``channel`` are parsed as numbers; ``split`` is kept as written; every
other column becomes a label field (as text). Empty cells are left out. ``.tsv`` files are read
tab-separated. Relative audio paths resolve against ``audio_root`` when given, else the table's
folder or the current folder (where the file exists).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from featcache.errors import ConfigError, ManifestError
from featcache.importers.common import IdSet, located, open_text, resolve_audio

_ALIASES = {"path": "audio"}


def read_csv(
    src: str | Path,
    *,
    split: str | None = None,
    audio_root: str | Path | None = None,
    delimiter: str | None = None,
) -> list[dict[str, Any]]:
    """Records of a CSV/TSV table, in row order.

    Parameters
    ----------
    src : path
        The table (``.csv``, ``.tsv``, optionally ``.gz``).
    split : str, optional
        Split of every row that has no ``split`` cell.
    audio_root : path, optional
        Folder that relative audio paths are relative to.
    delimiter : str, optional
        Column separator (one character; ``"tab"`` or ``"\\t"`` for a tab); default tab for
        ``.tsv`` files, else ``,``.
    """
    src = Path(src)
    if not src.is_file():
        raise ManifestError(f"{src}: no such CSV file; check the path")
    if delimiter is None:
        delimiter = "\t" if ".tsv" in src.suffixes else ","
    delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)  # as typed in a shell
    if len(delimiter) != 1:
        raise ConfigError(f"--delimiter must be one character (or 'tab'), got {delimiter!r}")
    bases = [Path(audio_root)] if audio_root else [src.resolve().parent, Path.cwd()]
    ids = IdSet()
    records = []
    try:
        with open_text(src) as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise ManifestError(f"{src}: empty file; expected a header row 'id,audio,...'")
            columns = _columns(header, src)
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(columns):
                    raise located(src, line, f"{len(row)} cells, but the header has {len(columns)}")
                record = _record(dict(zip(columns, row, strict=True)), src, line, bases)
                ids.add(record["id"], src, line)
                if split is not None and "split" not in record:
                    record["split"] = split
                records.append(record)
    except csv.Error as e:
        raise located(src, None, f"malformed CSV ({e})") from None
    except UnicodeDecodeError as e:
        raise located(src, None, f"not UTF-8 text ({e.reason}); convert it to UTF-8") from None
    return records


def _columns(header: list[str], src: Path) -> list[str]:
    columns = [_ALIASES.get(c.strip().lstrip("\ufeff"), c.strip().lstrip("\ufeff")) for c in header]
    missing = [c for c in ("id", "audio") if c not in columns]
    if missing:
        hint = ""
        if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
            sep = next(sep for sep in ";\t|" if sep in header[0])
            hint = f" (columns separated by {sep!r}? pass --delimiter {sep!r})"
        raise located(src, 1, f"header lacks column(s) {', '.join(missing)}; got {header}{hint}")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated or "" in columns:
        raise located(src, 1, f"header has repeated or empty column names: {repeated or ['']}")
    return columns


def _record(row: dict[str, str], src: Path, line: int, bases: list[Path]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, cell in row.items():
        value = cell.strip()
        if not value:
            continue
        if key in ("start", "duration"):
            record[key] = _seconds(value, key, src, line)
        elif key == "channel":
            if not value.isdigit():
                raise located(src, line, f"channel must be a 0-based integer, got {value!r}")
            record[key] = int(value)
        elif key == "audio":
            record[key] = resolve_audio(value, bases)
        else:
            record[key] = value
    for key in ("id", "audio"):
        if key not in record:
            raise located(src, line, f"empty '{key}' cell")
    return record


def _seconds(value: str, key: str, src: Path, line: int) -> float:
    try:
        number = float(value)
    except ValueError:
        raise located(src, line, f"{key} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (key == "duration" and number == 0):
        raise located(src, line, f"{key} must be a positive number of seconds, got {value!r}")
    return number
