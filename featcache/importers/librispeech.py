"""LibriSpeech (https://www.openslr.org/12) for ASR.

Layout (``SRC`` = the ``LibriSpeech`` folder holding subsets, or one subset folder)::

    <subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    <subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt     lines "UTT-ID TRANSCRIPT"

The split comes from the subset name: ``train-*`` -> train, ``dev-*`` -> dev, ``test-*`` -> test.
The paper's LibriSpeech-100 recipe uses ``train-clean-100``, ``dev-clean`` and ``test-clean``
(``subsets=...``). Fields: ``text`` (upper-case, as distributed), ``speaker``, ``chapter``,
``subset``. Audio converted to ``.wav`` next to the ``.flac`` is found too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featcache.errors import ConfigError, ManifestError
from featcache.importers.common import IdSet, located, read_table, require_dir, split_of


def read_librispeech(
    src: str | Path, *, subsets: str | list[str] | None = None
) -> list[dict[str, Any]]:
    """Records of the LibriSpeech subsets under ``src``, sorted by subset, then transcript file.

    Parameters
    ----------
    src : path
        The ``LibriSpeech`` folder, or one subset folder such as ``LibriSpeech/dev-clean``.
    subsets : str or list of str, optional
        Subsets to import (comma-separated string or list); default every subset found.
    """
    src = require_dir(
        Path(src), "the LibriSpeech folder or a subset folder such as dev-clean"
    ).resolve()
    found = {p.name: p for p in src.iterdir() if p.is_dir() and split_of(p.name)}
    if not found and split_of(src.name):
        found = {src.name: src}
    if isinstance(subsets, str):
        subsets = [s.strip() for s in subsets.split(",") if s.strip()]
    if subsets:
        unknown = [s for s in subsets if s not in found]
        if unknown:
            raise ConfigError(
                f"subset(s) {', '.join(unknown)} not in {src}; found: {', '.join(sorted(found))}"
            )
        found = {s: found[s] for s in subsets}
    if not found:
        raise ManifestError(
            f"{src}: no train-*/dev-*/test-* subset folders; is this the LibriSpeech folder?"
        )
    ids = IdSet()
    records: list[dict[str, Any]] = []
    for subset in sorted(found):
        folder = found[subset]
        transcripts = sorted(folder.glob("*/*/*.trans.txt"), key=lambda p: p.relative_to(folder))
        for trans in transcripts:
            speaker, chapter = trans.parent.parent.name, trans.parent.name
            for line, utt, text in read_table(trans):
                if not utt.startswith(f"{speaker}-{chapter}-"):
                    raise located(trans, line, f"utterance {utt!r} is not {speaker}-{chapter}-N")
                audio = _audio(trans.parent, utt)
                if audio is None:
                    raise located(trans, line, f"no {utt}.flac (or .wav) in {trans.parent}")
                ids.add(utt, trans, line)
                records.append(
                    {
                        "id": utt,
                        "audio": str(audio),
                        "split": split_of(subset),
                        "text": text,
                        "speaker": speaker,
                        "chapter": chapter,
                        "subset": subset,
                    }
                )
    return records


def _audio(folder: Path, utt: str) -> Path | None:
    for ext in (".flac", ".wav"):
        if (folder / f"{utt}{ext}").is_file():
            return folder / f"{utt}{ext}"
    return None
