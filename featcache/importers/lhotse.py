"""lhotse manifests: a CutSet, or a RecordingSet plus a SupervisionSet (``.jsonl`` or ``.jsonl.gz``).

The JSON is read directly (lhotse is not needed at run time). One utterance per supervision:
``id`` = supervision id, ``audio`` = the recording's file source, ``start``/``duration`` = the
supervision's span in the recording (for cuts: cut start + supervision start), ``channel``, and
``text``, ``speaker``, ``language``, ``gender`` plus every ``custom`` field. A cut without
supervisions becomes one utterance spanning the cut. Relative sources resolve against
``audio_root`` when given, else the manifest's folder or the current folder (where they exist).

``SRC`` is a cuts file, a recordings file (the supervisions file is found beside it by name:
``*recordings*`` -> ``*supervisions*``), or a folder holding ``cuts.jsonl[.gz]`` or
``recordings.jsonl[.gz]`` + ``supervisions.jsonl[.gz]`` (lhotse recipes' ``*_recordings_*``
naming works too when there is exactly one pair).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from featcache.errors import ManifestError
from featcache.importers.common import IdSet, located, read_lines, resolve_audio

_LABELS = ("text", "speaker", "language", "gender")
_RESERVED = ("id", "audio", "start", "duration", "channel")
_KINDS = ("cuts", "recordings", "supervisions")


def read_lhotse(
    src: str | Path,
    *,
    supervisions: str | Path | None = None,
    split: str | None = None,
    audio_root: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Records of a lhotse CutSet or RecordingSet + SupervisionSet, in supervision order.

    Parameters
    ----------
    src : path
        Cuts or recordings manifest, or a folder holding them (see the module docstring).
    supervisions : path, optional
        The SupervisionSet, when it is not beside the recordings under the usual name.
    split : str, optional
        Split of every utterance (a ``split`` custom field is used otherwise).
    audio_root : path, optional
        Folder that relative recording sources are relative to.
    """
    kind, path, sup_path = _locate(Path(src), supervisions)
    bases = [Path(audio_root)] if audio_root else [path.resolve().parent, Path.cwd()]
    ids = IdSet()
    records: list[dict[str, Any]] = []
    if kind == "cuts":
        for line, cut in _objects(path):
            records.extend(_from_cut(cut, path, line, bases, ids))
    else:
        recordings = {rec["id"]: (line, rec) for line, rec in _objects(path, need=("id",))}
        for line, sup in _objects(sup_path, need=("id", "recording_id", "start", "duration")):
            if sup["recording_id"] not in recordings:
                raise located(sup_path, line, f"recording {sup['recording_id']!r} is not in {path}")
            rec_line, rec = recordings[sup["recording_id"]]
            ids.add(str(sup["id"]), sup_path, line)
            audio, channel = _source(rec, sup.get("channel"), path, rec_line, bases)
            record = {"id": str(sup["id"]), "audio": audio}
            _span(record, float(sup["start"]), float(sup["duration"]), sup_path, line)
            records.append(_labels(record, channel, sup))
    if split is not None:
        for record in records:
            record["split"] = split
    return records


def _locate(src: Path, supervisions: str | Path | None) -> tuple[str, Path, Path | None]:
    """Which kind of manifest ``src`` is, its path, and the supervisions path for recordings."""
    if src.is_dir():
        found = {k: sorted(src.glob(f"*{k}*.jsonl*")) for k in _KINDS}
        if len(found["cuts"]) == 1 and not found["recordings"]:
            return "cuts", found["cuts"][0], None
        if len(found["recordings"]) == 1 and len(found["supervisions"]) == 1:
            sup = Path(supervisions) if supervisions else found["supervisions"][0]
            return "recordings", found["recordings"][0], sup
        raise ManifestError(
            f"{src}: expected one cuts*.jsonl[.gz], or one recordings*.jsonl[.gz] and one "
            f"supervisions*.jsonl[.gz]; found {sum(map(len, found.values()))} candidates: "
            "pass the file itself"
        )
    if not src.is_file():
        raise ManifestError(f"{src}: no such lhotse manifest; check the path")
    if "recordings" in src.name or supervisions is not None:
        sup = (
            Path(supervisions)
            if supervisions
            else src.with_name(src.name.replace("recordings", "supervisions"))
        )
        if not sup.is_file():
            raise ManifestError(
                f"{src}: supervisions manifest {sup} not found; pass it with --supervisions"
            )
        return "recordings", src, sup
    if "supervisions" in src.name:
        raise ManifestError(f"{src}: give the recordings manifest (or the cuts), not supervisions")
    return "cuts", src, None


def _objects(path: Path, need: tuple[str, ...] = ()):
    """``(line, object)`` per JSON line; a located error for bad JSON or missing keys."""
    for line, text in read_lines(path):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise located(
                path, line, f"bad JSON ({e.msg}); is this a lhotse .jsonl manifest?"
            ) from None
        if not isinstance(obj, dict):
            raise located(path, line, "line is not a JSON object")
        missing = [k for k in need if k not in obj]
        if missing:
            raise located(path, line, f"missing {', '.join(missing)}; not a lhotse manifest line?")
        yield line, obj


def _from_cut(cut: dict, path: Path, line: int, bases: list[Path], ids: IdSet) -> list[dict]:
    cut_type = cut.get("type", "MonoCut")
    if cut_type not in ("MonoCut", "MultiCut"):
        raise located(
            path,
            line,
            f"{cut_type} {cut.get('id')!r} is not supported (mixed or padding cuts "
            "have no single audio file); save the audio with lhotse first (cuts.save_audios)",
        )
    recording = cut.get("recording")
    if not isinstance(recording, dict) or "start" not in cut or "duration" not in cut:
        raise located(path, line, f"cut {cut.get('id')!r} has no recording/start/duration")
    cut_start, cut_duration = float(cut["start"]), float(cut["duration"])
    out = []
    sups = cut.get("supervisions") or []
    if not sups:  # an unsupervised cut is one utterance
        sups = [{"id": cut.get("id"), "start": 0.0, "duration": cut_duration}]
        sups[0]["channel"] = cut.get("channel")
        sups[0]["custom"] = cut.get("custom") or {}
    for sup in sups:
        if sup.get("id") is None or "start" not in sup or "duration" not in sup:
            raise located(
                path, line, f"a supervision of cut {cut.get('id')!r} lacks id/start/duration"
            )
        ids.add(str(sup["id"]), path, line)
        audio, channel = _source(
            recording, sup.get("channel", cut.get("channel")), path, line, bases
        )
        record = {"id": str(sup["id"]), "audio": audio}
        _span(record, cut_start + float(sup["start"]), float(sup["duration"]), path, line)
        out.append(_labels(record, channel, sup))
    return out


def _span(record: dict, start: float, duration: float, path: Path, line: int) -> None:
    if start < 0:  # a supervision reaching before its cut's recording: keep what exists
        duration, start = duration + start, 0.0
    if duration <= 0:
        raise located(path, line, f"supervision {record['id']!r} has no positive duration")
    if start > 0:
        record["start"] = round(start, 6)
    record["duration"] = round(duration, 6)


def _source(
    rec: dict, channel: Any, path: Path, line: int, bases: list[Path]
) -> tuple[str, int | None]:
    """The audio file holding ``channel`` of recording ``rec`` and the channel index inside it."""
    sources = rec.get("sources") or []
    if rec.get("transforms"):
        names = [t.get("name", "?") for t in rec["transforms"] if isinstance(t, dict)]
        if set(names) - {"Resample"}:
            raise located(
                path,
                line,
                f"recording {rec.get('id')!r} has transforms {names}; "
                "featcache reads plain files: save the transformed audio first",
            )
    if not sources:
        raise located(path, line, f"recording {rec.get('id')!r} has no sources")
    for source in sources:
        if source.get("type") != "file":
            raise located(
                path,
                line,
                f"recording {rec.get('id')!r} has a {source.get('type')!r} "
                "source; featcache reads files only: save the audio to files first",
            )
    channels = channel if isinstance(channel, list) or channel is None else [channel]
    every = sorted(c for source in sources for c in source.get("channels", []))
    if channels is None or sorted(channels) == every:
        if len(sources) != 1:
            raise located(
                path,
                line,
                f"recording {rec.get('id')!r} spreads channels over "
                f"{len(sources)} files; give each supervision one channel",
            )
        return resolve_audio(str(sources[0]["source"]), bases), None
    if len(channels) != 1:
        raise located(
            path,
            line,
            f"channels {channels} of recording {rec.get('id')!r}: featcache "
            "reads one channel or the downmix of all",
        )
    for source in sources:
        if channels[0] in source["channels"]:
            index = source["channels"].index(channels[0])
            only = len(source["channels"]) == 1
            return resolve_audio(str(source["source"]), bases), None if only else index
    raise located(path, line, f"channel {channels[0]} is not in recording {rec.get('id')!r}")


def _labels(record: dict, channel: int | None, sup: dict) -> dict:
    if channel is not None:
        record["channel"] = channel
    for key in _LABELS:
        if sup.get(key) is not None:
            record[key] = sup[key]
    for key, value in (sup.get("custom") or {}).items():
        if key == "split" and isinstance(value, str):
            record["split"] = value
        elif key in _RESERVED:
            record[f"custom_{key}"] = value
        elif key not in record:
            record[key] = value
    return record
