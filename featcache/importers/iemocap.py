"""IEMOCAP for emotion recognition as in SUPERB ER (s3prl ``downstream/emotion``).

Layout (``SRC`` = ``IEMOCAP_full_release`` or its parent)::

    Session{1..5}/sentences/wav/<dialog>/<utt>.wav
    Session{1..5}/dialog/EmoEvaluation/<dialog>.txt   lines "[START - END]<TAB>UTT<TAB>EMO<TAB>[V, A, D]"

SUPERB keeps four classes: ``neu``, ``hap`` (with ``exc`` merged into it), ``ang``, ``sad``; every
other label (``fru``, ``sur``, ``fea``, ``dis``, ``oth``, ``xxx``) is dropped (5,531 utterances in the
full corpus). ``all_emotions=True`` keeps every utterance with its original label instead.

Fields: ``emotion``, ``session`` (1-5), ``speaker`` (``Ses01F``: session plus the gender of the
actor speaking, from the utterance id), ``gender`` (F/M), ``act`` (improvised/scripted), and the
dimensional ratings ``valence``, ``activation``, ``dominance``.

Splits: SUPERB evaluates leave-one-session-out, five folds; s3prl's ``foldN`` tests on Session N and
trains on the other four, holding out a random 20% of those for dev. Here ``test_session`` (default 5)
is the test split; ``dev_ratio`` (0.2) of the other sessions' utterances, drawn with ``seed``, form
dev; the rest is train. The draw is deterministic but not the same as s3prl's ``random_split``.
Run the import once per fold (``--test-session 1..5``) to reproduce all five folds.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from featcache.errors import ConfigError, ManifestError
from featcache.importers.common import IdSet, located, read_lines, require_dir

SUPERB_EMOTIONS = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}
_LINE = re.compile(
    r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[\s*([\d.]+),\s*([\d.]+),\s*([\d.]+)\s*\]"
)


def read_iemocap(
    src: str | Path,
    *,
    test_session: int = 5,
    dev_ratio: float = 0.2,
    seed: int = 0,
    all_emotions: bool = False,
) -> list[dict[str, Any]]:
    """Records of IEMOCAP's labelled sentences, in session, dialog and turn order.

    Parameters
    ----------
    src : path
        ``IEMOCAP_full_release`` (holding ``Session1`` ... ``Session5``) or its parent.
    test_session : int
        Session used as the test split (1-5; SUPERB's fold number).
    dev_ratio : float
        Fraction of the training sessions' utterances held out as dev.
    seed : int
        Seed of the dev draw.
    all_emotions : bool
        Keep every label as annotated instead of SUPERB's four classes.
    """
    root = require_dir(Path(src), "IEMOCAP_full_release (holding Session1..Session5)").resolve()
    if (root / "IEMOCAP_full_release").is_dir():
        root = root / "IEMOCAP_full_release"
    sessions = [n for n in range(1, 6) if (root / f"Session{n}").is_dir()]
    if not sessions:
        raise ManifestError(f"{root}: no Session1..Session5 folders; is this IEMOCAP_full_release?")
    if test_session not in sessions:
        raise ConfigError(f"--test-session {test_session}: {root}/Session{test_session} not found")
    if not 0 <= dev_ratio < 1:
        raise ConfigError(f"--dev-ratio must be in [0, 1), got {dev_ratio}")
    ids = IdSet()
    records: list[dict[str, Any]] = []
    for session in sessions:
        records.extend(_session(root / f"Session{session}", session, all_emotions, ids))
    _assign_splits(records, test_session, dev_ratio, seed)
    return records


def _session(folder: Path, session: int, all_emotions: bool, ids: IdSet) -> list[dict[str, Any]]:
    labels = folder / "dialog" / "EmoEvaluation"
    if not labels.is_dir():
        raise ManifestError(f"{folder}: no dialog/EmoEvaluation folder with the emotion labels")
    records = []
    for table in sorted(labels.glob("*.txt")):
        if table.name.startswith("."):
            continue
        dialog = table.stem
        for line, text in read_lines(table):
            if not text.startswith("["):
                continue  # headers and per-annotator lines
            match = _LINE.match(text)
            if match is None:
                raise located(table, line, "expected '[START - END]\\tUTT\\tEMOTION\\t[V, A, D]'")
            _, _, utt, emotion, valence, activation, dominance = match.groups()
            emotion = emotion if all_emotions else SUPERB_EMOTIONS.get(emotion)
            if emotion is None:
                continue
            audio = folder / "sentences" / "wav" / dialog / f"{utt}.wav"
            if not audio.is_file():
                raise located(table, line, f"audio of {utt} not found at {audio}")
            ids.add(utt, table, line)
            gender = utt.rsplit("_", 1)[-1][:1]
            records.append(
                {
                    "id": utt,
                    "audio": str(audio),
                    "emotion": emotion,
                    "session": session,
                    "speaker": f"{utt[:5]}{gender}",
                    "gender": gender,
                    "act": "improvised" if "_impro" in dialog else "scripted",
                    "valence": float(valence),
                    "activation": float(activation),
                    "dominance": float(dominance),
                }
            )
    return records


def _assign_splits(records: list[dict], test_session: int, dev_ratio: float, seed: int) -> None:
    """Test = ``test_session``; a seeded ``dev_ratio`` draw of the rest is dev; others train."""
    training = sorted(r["id"] for r in records if r["session"] != test_session)
    random.Random(seed).shuffle(training)
    dev = set(training[: round(len(training) * dev_ratio)])
    for record in records:
        if record["session"] == test_session:
            record["split"] = "test"
        else:
            record["split"] = "dev" if record["id"] in dev else "train"
