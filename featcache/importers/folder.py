"""A folder of audio files (recursive): one utterance per file.

``id`` is the path relative to the folder without its extension, ``/`` replaced by ``_``
(``spk1/a.wav`` -> ``spk1_a``). Extensions: ``.wav``, ``.flac``, ``.ogg``, and ``.mp3`` when the
installed libsndfile reads MP3. With ``label_from="parent"`` the name of each file's folder becomes a
label (``speaker/utt.wav``); ``"top"`` takes the first folder below ``SRC`` instead
(``angry/session1/x.wav``). The field is ``label`` unless ``label_field`` says otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featcache.errors import ManifestError
from featcache.importers.common import AUDIO_EXTENSIONS, IdSet, audio_files, require_dir, split_of
from featcache.registry import Registry

LABEL_SOURCES = Registry("label source", "--label-from")
LABEL_SOURCES.register("parent", "the folder holding each file (speaker/utt.wav)")
LABEL_SOURCES.register("top", "the first folder below SRC (angry/session1/x.wav)")


def read_folder(
    src: str | Path,
    *,
    label_from: str | None = None,
    label_field: str = "label",
    split: str | None = None,
) -> list[dict[str, Any]]:
    """Records for every audio file under ``src``, sorted by relative path.

    Parameters
    ----------
    src : path
        The folder.
    label_from : str, optional
        A :data:`LABEL_SOURCES` name: take a label from each file's parent folder name
        (``parent``), or from the first folder below ``src`` (``top``).
    label_field : str
        Name of that label field (``speaker``, ``emotion``, ...); default ``label``.
    split : str, optional
        Split of every file. ``"auto"`` takes it from the first folder below ``src`` when that is
        named ``train*``/``dev*``/``test*``.
    """
    src = require_dir(Path(src), "a folder of audio files").resolve()
    if label_from is not None:
        LABEL_SOURCES.get(label_from)  # ConfigError naming the choices
    files = audio_files(src, _extensions())
    if not files:
        raise ManifestError(f"{src}: no audio files ({', '.join(_extensions())}) found below it")
    ids = IdSet()
    records = []
    for path in files:
        relative = path.relative_to(src)
        utt_id = relative.with_suffix("").as_posix().replace("/", "_")
        ids.add(utt_id, path, None)
        record: dict[str, Any] = {"id": utt_id, "audio": str(path)}
        folders = relative.parts[:-1]
        found = split_of(folders[0]) if split == "auto" and folders else None
        if found:
            record["split"] = found
            folders = folders[1:]  # the split folder is not a label
        elif split not in (None, "auto"):
            record["split"] = split
        if label_from is not None:
            if not folders:
                raise ManifestError(
                    f"{path}: has no labelled folder below {src}"
                    f"{' and its split folder' if found else ''}; move it into a labelled folder "
                    "or drop --label-from"
                )
            record[label_field] = folders[-1] if label_from == "parent" else folders[0]
        records.append(record)
    return records


def _extensions() -> tuple[str, ...]:
    """The audio extensions soundfile can read here (MP3 needs libsndfile >= 1.1)."""
    import soundfile

    if "MP3" in soundfile.available_formats():
        return AUDIO_EXTENSIONS
    return tuple(e for e in AUDIO_EXTENSIONS if e != ".mp3")
