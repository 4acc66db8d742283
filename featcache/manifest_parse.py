"""Reading a manifest file into utterances, collecting every structural problem.

Nothing stops at the first defect: :func:`parse_file` returns the utterances it could read and
a :class:`~featcache.utterance.Problem` (file, line, id, message) for each bad line, so
``featcache manifest validate`` lists them all. Audio files are not opened here.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from pathlib import Path
from typing import Any

from featcache.errors import ManifestError
from featcache.utterance import RESERVED, Problem, Utterance


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


def parse_file(path: Path) -> tuple[list[Utterance], list[Problem]]:
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
        utt, errs = parse_record(record, root, number, str(path))
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


def parse_record(
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
