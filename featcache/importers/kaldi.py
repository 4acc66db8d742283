"""Kaldi data directories: ``wav.scp`` plus optional ``segments``, ``text``, ``utt2spk``, ...

Layout (https://kaldi-asr.org/doc/data_prep.html)::

    wav.scp      REC PATH            or  REC COMMAND |   (cat/sox/flac/sph2pipe reading one file)
    segments     UTT REC START END   (seconds; END -1 = to the end of the recording)
    text         UTT WORDS...
    utt2spk      UTT SPEAKER         -> ``speaker``
    spk2gender   SPEAKER m|f         -> ``gender`` of that speaker's utterances
    utt2lang     UTT LANGUAGE        -> ``language``
    utt2NAME     UTT VALUE           -> field ``NAME`` (any other per-utterance table)

Without ``segments`` every ``wav.scp`` entry is one utterance. Relative audio paths resolve against
``audio_root`` when given, else the first of: the data dir, its parent, its grandparent (the recipe
folder Kaldi scripts run from), the current folder, where the file exists.
"""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path
from typing import Any

from featcache.errors import ManifestError
from featcache.importers.common import (
    IdSet,
    located,
    read_map,
    read_table,
    require_dir,
    resolve_audio,
    split_of,
)

# per-utterance tables with a fixed field name; utt2dur/utt2num_frames describe features, not labels
_UTT_TABLES = {"utt2spk": "speaker", "utt2lang": "language"}
_SKIPPED_TABLES = {"utt2dur", "utt2num_frames", "utt2uniq"}
_RESERVED = {"id", "audio", "start", "duration", "channel"}  # utt2split may set the split


def read_kaldi(
    src: str | Path, *, split: str | None = None, audio_root: str | Path | None = None
) -> list[dict[str, Any]]:
    """Records of a Kaldi data dir, in ``segments`` order (else ``wav.scp`` order).

    Parameters
    ----------
    src : path
        The data directory (holding ``wav.scp``).
    split : str, optional
        Split of every utterance. Default: inferred from the folder name when it starts with
        ``train``/``dev``/``test`` (``data/train_clean_100`` -> ``train``), else none.
    audio_root : path, optional
        Folder that relative paths in ``wav.scp`` are relative to.
    """
    src = require_dir(Path(src), "a Kaldi data dir holding wav.scp")
    wav_scp = src / "wav.scp"
    if not wav_scp.is_file():
        raise ManifestError(f"{src}: no wav.scp; a Kaldi data dir needs one (REC PATH per line)")
    bases = [Path(audio_root)] if audio_root else [src, src.parent, src.parent.parent, Path.cwd()]
    recordings: dict[str, tuple[int, str, int | None]] = {}
    for number, rec, value in read_table(wav_scp):
        if rec in recordings:
            raise located(wav_scp, number, f"recording {rec!r} repeats line {recordings[rec][0]}")
        path, channel = parse_wav_entry(value, wav_scp, number)
        recordings[rec] = (number, resolve_audio(path, bases), channel)

    records: list[dict[str, Any]] = []
    ids = IdSet()
    segments = src / "segments"
    if segments.is_file():
        for number, utt, value in read_table(segments):
            rec, start, end = _parse_segment(value, segments, number)
            if rec not in recordings:
                raise located(segments, number, f"recording {rec!r} is not in {wav_scp}")
            ids.add(utt, segments, number)
            _, audio, channel = recordings[rec]
            record: dict[str, Any] = {"id": utt, "audio": audio}
            if start > 0:
                record["start"] = start
            if end >= 0:
                record["duration"] = round(end - start, 6)
            if channel is not None:
                record["channel"] = channel
            records.append(record)
    else:
        for rec, (number, audio, channel) in recordings.items():
            ids.add(rec, wav_scp, number)
            record = {"id": rec, "audio": audio}
            if channel is not None:
                record["channel"] = channel
            records.append(record)

    _add_labels(src, records)
    inferred = split_of(src.name)
    for record in records:
        if split is not None:
            record["split"] = split
        elif inferred is not None:
            record.setdefault("split", inferred)  # a utt2split table wins over the folder name
    return records


def _parse_segment(value: str, path: Path, line: int) -> tuple[str, float, float]:
    parts = value.split()
    if len(parts) != 3:
        raise located(path, line, f"expected 'UTT REC START END', got {len(parts) + 1} fields")
    try:
        start, end = float(parts[1]), float(parts[2])
    except ValueError:
        raise located(
            path, line, f"START/END must be seconds, got {parts[1]!r} {parts[2]!r}"
        ) from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise located(path, line, f"START/END must be finite seconds, got {start} {end}")
    if start < 0:
        raise located(path, line, f"negative start {start}")
    if end >= 0 and end <= start:
        raise located(path, line, f"end {end} is not after start {start} (use -1 for 'to the end')")
    return parts[0], start, end


def _add_labels(src: Path, records: list[dict[str, Any]]) -> None:
    """Attach ``text``, ``speaker``, ``gender``, ``language`` and other ``utt2*`` tables."""
    by_id = {r["id"]: r for r in records}
    text = src / "text"
    if text.is_file():
        for utt, (_, value) in read_map(text, allow_empty=True).items():
            if utt in by_id:
                by_id[utt]["text"] = value
    tables = sorted(p for p in src.glob("utt2*") if p.is_file() and p.name not in _SKIPPED_TABLES)
    for table in tables:
        name = _UTT_TABLES.get(table.name, table.name[len("utt2") :])
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in _RESERVED:
            continue
        for utt, (_, value) in read_map(table).items():
            if utt in by_id:
                by_id[utt][name] = value
    spk2gender = src / "spk2gender"
    if spk2gender.is_file():
        genders = read_map(spk2gender)
        for record in records:
            entry = genders.get(record.get("speaker", ""))
            if entry is not None:
                record["gender"] = entry[1].lower()


# --- wav.scp commands --------------------------------------------------------------------------
_SOX_ARG_OPTIONS = {"-t", "--type", "-r", "--rate", "-c", "--channels", "-b", "--bits"}
_SOX_ARG_OPTIONS |= {"-e", "--encoding", "-C", "--compression", "--buffer", "--input-buffer"}
_SOX_FLAGS = {"-q", "--no-show-progress", "-S", "--show-progress", "-G", "--guard", "-D"}
_SOX_FLAGS |= {"--no-dither", "-R", "-L", "-B", "-x", "-X", "-N", "--no-clobber", "--ignore-length"}


def parse_wav_entry(value: str, path: Path, line: int) -> tuple[str, int | None]:
    """The audio file and channel (0-based, None = all) of one ``wav.scp`` value.

    A plain path is returned as is. A command ending in ``|`` is accepted only when it reads one
    file without changing the samples beyond what featcache does itself (format conversion,
    resampling, downmix or picking one channel): ``cat F``, ``sox F ... -`` with ``rate``,
    ``channels 1`` or ``remix N`` effects, ``flac -c -d -s F``, ``sph2pipe -f wav [-p] [-c N] F``.
    """
    value = value.strip()
    if not value.endswith("|"):
        if re.search(r"\.ark:\d+$", value) or value.startswith("ark:"):
            raise located(
                path,
                line,
                f"{value!r} points into a Kaldi archive; featcache needs "
                "audio files (write them out with wav-copy)",
            )
        return value, None
    command = value[:-1].strip()
    try:
        tokens = shlex.split(command)
    except ValueError as e:
        raise located(path, line, f"cannot parse command {command!r} ({e})") from None
    if not tokens:
        raise located(path, line, "empty command before '|'")
    program = Path(tokens[0]).name
    parsers = {
        "cat": _parse_cat,
        "sox": _parse_sox,
        "flac": _parse_flac,
        "sph2pipe": _parse_sph2pipe,
    }
    parser = parsers.get(program)
    result = parser(tokens[1:]) if parser else None
    if result is None:
        raise located(
            path,
            line,
            f"command {command!r} is not a plain read of one audio file; featcache reads "
            "cat/sox/flac/sph2pipe pipes only: write the audio to files and list their paths",
        )
    return result


def _parse_cat(args: list[str]) -> tuple[str, int | None] | None:
    return (args[0], None) if len(args) == 1 and not args[0].startswith("-") else None


def _parse_flac(args: list[str]) -> tuple[str, int | None] | None:
    files = [a for a in args if not a.startswith("-")]
    flags = "".join(a.lstrip("-") for a in args if a.startswith("-") and not a.startswith("--"))
    longs = [a for a in args if a.startswith("--")]
    decodes = "d" in flags or "--decode" in longs
    if len(files) != 1 or not decodes or set(flags) - set("cdsf"):
        return None
    if set(longs) - {"--decode", "--stdout", "--silent", "--force"}:
        return None
    return files[0], None


def _parse_sph2pipe(args: list[str]) -> tuple[str, int | None] | None:
    channel, files, i = None, [], 0
    while i < len(args):
        arg = args[i]
        if arg in ("-f", "-c") and i + 1 < len(args):
            if arg == "-c":
                if not args[i + 1].isdigit() or int(args[i + 1]) < 1:
                    return None
                channel = int(args[i + 1]) - 1
            i += 2
            continue
        if arg == "-p":
            i += 1
            continue
        if arg.startswith("-"):
            return None  # -t (time range) or -s (samples) cut the audio
        files.append(arg)
        i += 1
    return (files[0], channel) if len(files) == 1 else None


def _parse_sox(args: list[str]) -> tuple[str, int | None] | None:
    files: list[str] = []
    i = 0
    while i < len(args) and len(files) < 2:
        arg = args[i]
        if arg in _SOX_ARG_OPTIONS:
            i += 2
        elif arg in _SOX_FLAGS or re.fullmatch(r"-V\d?", arg):
            i += 1
        elif arg in ("-", "-p") or not arg.startswith("-"):
            files.append(arg)
            i += 1
        else:
            return None  # -v (volume), --norm, -m (mix), ... change the samples
    if len(files) != 2 or files[1] not in ("-", "-p") or files[0] == "-":
        return None
    return _sox_effects(files[0], args[i:])


def _sox_effects(audio: str, effects: list[str]) -> tuple[str, int | None] | None:
    channel, i = None, 0
    while i < len(effects):
        name = effects[i]
        if name == "rate":  # featcache resamples itself; skip quality flags and the rate
            i += 1
            while i < len(effects) and effects[i].startswith("-"):
                i += 1
            i += 1
        elif name == "channels" and effects[i + 1 : i + 2] == ["1"]:
            channel, i = None, i + 2
        elif name == "remix" and i + 2 == len(effects) and effects[i + 1] == "-":
            channel, i = None, i + 2
        elif name == "remix" and i + 2 == len(effects) and effects[i + 1].isdigit():
            if int(effects[i + 1]) < 1:
                return None
            channel, i = int(effects[i + 1]) - 1, i + 2
        else:
            return None
    return audio, channel
