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
from typing import Any

from featcache.errors import ConfigError, ManifestError
from featcache.importers.csv import read_csv
from featcache.importers.folder import read_folder
from featcache.importers.iemocap import read_iemocap
from featcache.importers.kaldi import read_kaldi
from featcache.importers.lhotse import read_lhotse
from featcache.importers.librispeech import read_librispeech
from featcache.importers.mlsuperb import read_mlsuperb
from featcache.importers.voxceleb1 import read_voxceleb1
from featcache.manifest import Manifest, write_manifest

IMPORTERS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "kaldi": read_kaldi,
    "lhotse": read_lhotse,
    "csv": read_csv,
    "dir": read_folder,
    "iemocap": read_iemocap,
    "librispeech": read_librispeech,
    "voxceleb1": read_voxceleb1,
    "mlsuperb": read_mlsuperb,
}

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
        A key of :data:`IMPORTERS`: kaldi, lhotse, csv, dir, iemocap, librispeech, voxceleb1,
        mlsuperb.
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
    try:
        return IMPORTERS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown importer {kind!r}; choose one of {', '.join(IMPORTERS)}"
        ) from None


def _relative_to(record: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The record with its audio path relative to ``folder`` when the file lies inside it."""
    audio = Path(record["audio"])
    try:
        relative = audio.relative_to(folder)
    except ValueError:
        return record
    return {**record, "audio": relative.as_posix()}
