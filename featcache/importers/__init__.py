"""Manifest importers: existing corpus descriptions to featcache manifests (JSONL).

Each importer is one module with one function ``read_<kind>(src, **options) -> list[dict]`` that
returns manifest records (``id``, absolute ``audio``, optional ``start``/``duration``/``channel``/
``split`` and label fields) in a deterministic order, and raises
:class:`~featcache.errors.ManifestError` naming the file and line of malformed input.
:func:`import_manifest` runs one by name and writes the result.

Example
-------
>>> from featcache.importers import import_manifest
>>> m = import_manifest("kaldi", "data/train", "manifests/train.jsonl")   # doctest: +SKIP
>>> m = import_manifest("iemocap", "IEMOCAP_full_release", "er.jsonl", test_session=1)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featcache.errors import ConfigError, ManifestError
from featcache.registry import Registry

if TYPE_CHECKING:
    from featcache.manifest import Manifest

# the only place importer names are written; each names its module's read_<kind> function
IMPORTERS = Registry("importer", "KIND")
IMPORTERS.register("kaldi", "a Kaldi data dir (wav.scp, segments, text, utt2spk)",
                   "featcache.importers.kaldi:read_kaldi")  # fmt: skip
IMPORTERS.register("lhotse", "lhotse cuts, or recordings + supervisions manifests",
                   "featcache.importers.lhotse:read_lhotse")  # fmt: skip
IMPORTERS.register("csv", "a CSV/TSV table: id, audio, label columns",
                   "featcache.importers.csv:read_csv")  # fmt: skip
IMPORTERS.register("dir", "a folder of audio files (labels from folder names)",
                   "featcache.importers.folder:read_folder")  # fmt: skip
IMPORTERS.register("iemocap", "IEMOCAP_full_release (SUPERB emotion recognition)",
                   "featcache.importers.iemocap:read_iemocap")  # fmt: skip
IMPORTERS.register("librispeech", "LibriSpeech subsets (ASR)",
                   "featcache.importers.librispeech:read_librispeech")  # fmt: skip
IMPORTERS.register("voxceleb1", "VoxCeleb1 with iden_split.txt (speaker identification)",
                   "featcache.importers.voxceleb1:read_voxceleb1")  # fmt: skip
IMPORTERS.register("mlsuperb", "ML-SUPERB monolingual ASR",
                   "featcache.importers.mlsuperb:read_mlsuperb")  # fmt: skip

__all__ = ["IMPORTERS", "import_manifest", "import_records", "importer_options"]


def importer_options(kind: str) -> list[str]:
    """Keyword options the importer ``kind`` accepts (for help texts and option checks)."""
    params = inspect.signature(_importer(kind)).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def import_records(kind: str, src: str | os.PathLike, **options: Any) -> list[dict[str, Any]]:
    """Run importer ``kind`` on ``src``; records have absolute audio paths.

    Options set to ``None`` are ignored (the importer's default applies); an option the importer
    does not take raises :class:`~featcache.errors.ConfigError`.
    """
    reader = _importer(kind)
    options = {k: v for k, v in options.items() if v is not None}
    accepted = importer_options(kind)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        names = ", ".join("--" + k.replace("_", "-") for k in unknown)
        takes = ", ".join("--" + k.replace("_", "-") for k in accepted) or "no options"
        raise ConfigError(f"importer {kind!r} does not take {names}; it takes {takes}")
    if not Path(src).exists():
        raise ManifestError(f"{src}: not found; give the {kind} source folder or file")
    return reader(Path(src), **options)


def import_manifest(
    kind: str,
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    absolute: bool = False,
    **options: Any,
) -> Manifest:
    """Convert ``src`` with importer ``kind`` and write manifest ``out`` atomically.

    Parameters
    ----------
    kind : str
        A name in :data:`IMPORTERS`.
    src : path
        What the importer reads (a folder or a file, see its module).
    out : path
        Output manifest, ``.jsonl`` or ``.jsonl.gz``.
    absolute : bool
        Write absolute audio paths. By default audio inside ``out``'s folder is written relative to
        it (the corpus and its manifest can move together); other audio is written absolute.
    **options
        Importer options (``split=``, ``label_from=``, ``language=``, ``config=``, ...).

    Returns
    -------
    Manifest
        The written manifest (absolute paths in memory, ``path`` = ``out``).
    """
    out = Path(out)
    if not out.name.endswith((".jsonl", ".jsonl.gz")):
        raise ConfigError(f"{out}: the output manifest must end in .jsonl or .jsonl.gz")
    from featcache.manifest import Manifest, write_manifest

    records = import_records(kind, src, **options)
    if not records:
        raise ManifestError(f"{src}: the {kind} importer found no utterances; check the layout")
    folder = out.parent.resolve()
    if not absolute:
        records = [_relative_to(r, folder) for r in records]
    manifest = Manifest.from_records(records, root=folder)  # checks every record before writing
    write_manifest(records, out)
    return Manifest(manifest.utterances, path=out)


def _importer(kind: str) -> Callable[..., list[dict[str, Any]]]:
    return IMPORTERS.get(kind).load()


def _relative_to(record: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The record with its audio path relative to ``folder`` when the file lies inside it."""
    audio = Path(record["audio"])
    try:
        relative = audio.relative_to(folder)
    except ValueError:
        return record
    return {**record, "audio": relative.as_posix()}
