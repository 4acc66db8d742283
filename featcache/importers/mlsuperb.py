"""ML-SUPERB (multilingual SUPERB) for ASR, monolingual or multilingual, 10-minute or 1-hour.

Layout (``SRC`` = the folder holding the source datasets, ESPnet's ``$MLSUPERB``)::

    <dataset>/<lang>/transcript_10min_train.txt     lines "UTT-ID LANG TRANSCRIPT"
    <dataset>/<lang>/transcript_1h_train.txt
    <dataset>/<lang>/transcript_10min_dev.txt
    <dataset>/<lang>/transcript_10min_test.txt
    <dataset>/<lang>/wav/<UTT-ID>.wav

Following ESPnet's ``egs2/ml_superb/asr1/local`` data preparation:

- ``config`` picks the training transcript (``10min`` or ``1h``); dev and test always use the
  10-minute lists.
- Monolingual (``language=...``): a benchmark name such as ``eng1`` selects the dataset that
  provides train and dev (``eng1`` -> mls, ``eng2`` -> nchlt, ...), and test gathers that language
  from every dataset; a plain ISO code (``eng``) uses every dataset for all three splits.
- Multilingual (no ``language``): every dataset and language. The benchmark's few-shot subsetting of
  20 reserved languages is not applied; ``max_duration=20`` drops training utterances over 20 s as
  ESPnet's multilingual recipe does (it opens every training file, so it is off by default).

Fields: ``text`` normalised as ESPnet does (bracketed tags removed, punctuation stripped, upper
case; CER is computed on it), ``text_raw`` (as distributed), ``language``, ``dataset``.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

from featcache.errors import ConfigError, ManifestError
from featcache.importers.common import IdSet, located, read_lines, require_dir
from featcache.registry import Registry

# ML-SUPERB's training-set sizes: the name is the middle of transcript_<name>_train.txt
TRAIN_SETS = Registry("ML-SUPERB training set", "--config")
TRAIN_SETS.register(
    "10min", "10 minutes per language (the benchmark's few-shot setting)", default=True
)
TRAIN_SETS.register("1h", "1 hour of training audio per language")

# monolingual benchmark names -> the dataset providing train/dev (ESPnet single_lang_data_prep)
MONO_DATASETS = {
    "eng1": "mls",
    "eng2": "nchlt",
    "eng3": "voxpopuli",
    "fra1": "voxforge",
    "fra2": "voxpopuli",
    "deu1": "swc",
    "deu2": "voxpopuli",
    "rus": "M-AILABS",
    "swa": "ALFFA",
    "swe": "NST",
    "jpn": "commonvoice",
    "cmn": "fleurs",
    "xty": "mexico-el",
}
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_text(text: str) -> str:
    """ML-SUPERB's transcript normalisation: drop ``[tags]`` and punctuation, upper-case."""
    return re.sub(r"\[[^()]*\]", "", text).translate(_PUNCTUATION).upper().strip()


def read_mlsuperb(
    src: str | Path,
    *,
    language: str | None = None,
    config: str = TRAIN_SETS.default,
    max_duration: float | None = None,
) -> list[dict[str, Any]]:
    """Records of ML-SUPERB train/dev/test, ordered by split, dataset, language, then file order.

    Parameters
    ----------
    src : path
        Folder holding the dataset folders (``ALFFA``, ``mls``, ``fleurs``, ...).
    language : str, optional
        Monolingual setting: a benchmark name (``eng1``, ``jpn``, ...) or an ISO 639-3 code.
    config : str
        Training-set size, a :data:`TRAIN_SETS` name (``10min`` or ``1h``).
    max_duration : float, optional
        Drop training utterances longer than this many seconds.
    """
    src = require_dir(Path(src), "the ML-SUPERB folder holding <dataset>/<lang>/ folders").resolve()
    TRAIN_SETS.get(config)  # ConfigError naming the choices
    pairs = sorted(
        (d.name, lang.name)
        for d in src.iterdir()
        if d.is_dir()
        for lang in d.iterdir()
        if lang.is_dir() and any(lang.glob("transcript_*.txt"))
    )
    if not pairs:
        raise ManifestError(f"{src}: no <dataset>/<lang>/transcript_*.txt; is this ML-SUPERB?")
    plan = _plan(pairs, language, src)
    ids = IdSet()
    records: list[dict[str, Any]] = []
    for split, listing in (
        ("train", f"transcript_{config}_train.txt"),
        ("dev", "transcript_10min_dev.txt"),
        ("test", "transcript_10min_test.txt"),
    ):
        for dataset, lang in plan[split]:
            table = src / dataset / lang / listing
            if not table.is_file():
                raise ManifestError(
                    f"{table}: not found; ML-SUPERB lists {listing} for {dataset}/{lang}"
                )
            limit = max_duration if split == "train" else None
            records.extend(_read(table, split, dataset, limit, ids))
    return records


def _plan(pairs: list[tuple[str, str]], language: str | None, src: Path) -> dict[str, list]:
    """Which (dataset, lang) folders feed each split."""
    if language is None:
        return {"train": pairs, "dev": pairs, "test": pairs}
    code = language[:3]
    mine = [p for p in pairs if p[1] == code]
    if not mine:
        found = sorted({lang for _, lang in pairs})
        raise ConfigError(f"--language {language}: no {code}/ folder in {src}; found {found}")
    if language in MONO_DATASETS:
        chosen = [p for p in mine if p[0] == MONO_DATASETS[language]]
        if not chosen:
            raise ConfigError(
                f"--language {language} trains on {MONO_DATASETS[language]}/{code}, "
                f"which is not in {src}"
            )
        return {"train": chosen, "dev": chosen, "test": mine}
    return {"train": mine, "dev": mine, "test": mine}


def _read(table: Path, split: str, dataset: str, max_duration: float | None, ids: IdSet) -> list:
    records = []
    for line, text in read_lines(table):
        parts = text.strip().split(maxsplit=2)
        if len(parts) != 3:
            raise located(table, line, "expected 'UTT-ID LANG TRANSCRIPT'")
        utt, lang, transcript = parts
        audio = table.parent / "wav" / f"{utt}.wav"
        if not audio.is_file():
            raise located(table, line, f"audio of {utt} not found at {audio}")
        if max_duration is not None and _seconds(audio) > max_duration:
            continue
        ids.add(utt, table, line)
        records.append(
            {
                "id": utt,
                "audio": str(audio),
                "split": split,
                "text": normalize_text(transcript),
                "text_raw": transcript,
                "language": lang,
                "dataset": dataset,
            }
        )
    return records


def _seconds(path: Path) -> float:
    import soundfile

    info = soundfile.info(str(path))
    return info.frames / info.samplerate
