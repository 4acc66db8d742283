"""Tiny fake copies of public corpus layouts (IEMOCAP, LibriSpeech, VoxCeleb1, ML-SUPERB).

Each builder writes the folder structure and label files of the real corpus, with a few short
noise clips as audio, so importers and recipes can be tested without the data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IEMOCAP_EMOTIONS = ("neu", "hap", "exc", "ang", "sad", "fru", "xxx", "neu")


def noise_wav(path: Path, seconds: float = 0.2, sr: int = 16000) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    sf.write(path, 0.1 * rng.standard_normal(int(seconds * sr)).astype("float32"), sr)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def fake_iemocap(root: Path) -> Path:
    """Sessions 1-5, each with one improvised and one scripted dialog of 4 turns; returns ``root``.

    The release folder is ``root/IEMOCAP_full_release``; emotion labels cycle through
    :data:`IEMOCAP_EMOTIONS` (including classes SUPERB drops).
    """
    release = Path(root) / "IEMOCAP_full_release"
    for s in range(1, 6):
        session = release / f"Session{s}"
        for k, dialog in enumerate([f"Ses0{s}F_impro01", f"Ses0{s}M_script02_1"]):
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            for i in range(4):
                utt = f"{dialog}_{'FM'[i % 2]}00{i}"
                emotion = IEMOCAP_EMOTIONS[(4 * k + i + s) % len(IEMOCAP_EMOTIONS)]
                noise_wav(session / "sentences" / "wav" / dialog / f"{utt}.wav", 0.1)
                lines += [
                    f"[{i}.0 - {i}.5]\t{utt}\t{emotion}\t[2.5000, 3.0000, {i}.5000]",
                    f"C-E1:\t{emotion.title()};\t()",
                    "",
                ]
            write_text(session / "dialog" / "EmoEvaluation" / f"{dialog}.txt", "\n".join(lines))
        write_text(session / "dialog" / "EmoEvaluation" / "Categorical" / f"Ses0{s}_cat.txt", "x\n")
    return Path(root)


def fake_librispeech(root: Path) -> Path:
    """train-clean-100, dev-clean and test-clean with one speaker and 2 utterances each.

    Returns the ``LibriSpeech`` folder.
    """
    ls = Path(root) / "LibriSpeech"
    for subset, spk in (("train-clean-100", "103"), ("dev-clean", "84"), ("test-clean", "1089")):
        folder = ls / subset / spk / "1240"
        lines = []
        for n in range(2):
            utt = f"{spk}-1240-{n:04d}"
            noise_wav(folder / f"{utt}.flac", 0.2)
            lines.append(f"{utt} {subset.upper().replace('-', ' ')} NUMBER {n}")
        write_text(folder / f"{spk}-1240.trans.txt", "\n".join(lines) + "\n")
    return ls


def fake_voxceleb1(root: Path) -> Path:
    """Two speakers with 4 clips each (splits 1,1,2,3 in iden_split.txt); returns the folder."""
    vox = Path(root) / "VoxCeleb1"
    listing = []
    for speaker in ("id10001", "id10002"):
        for n, split in enumerate("1123", start=1):
            relative = f"{speaker}/yt{speaker[-1]}_{n % 2}/{n:05d}.wav"
            noise_wav(vox / "wav" / relative, 0.1)
            listing.append(f"{split} {relative}")
    write_text(vox / "iden_split.txt", "\n".join(listing) + "\n")
    return vox


def fake_mlsuperb(root: Path) -> Path:
    """mls/eng, nchlt/eng and fleurs/cmn with the four transcript lists; returns ``root``."""
    root = Path(root)
    for dataset, lang in (("mls", "eng"), ("nchlt", "eng"), ("fleurs", "cmn")):
        folder = root / dataset / lang
        for listing in ("10min_train", "1h_train", "10min_dev", "10min_test"):
            utts = [
                f"{dataset}_{lang}_{listing}_{n}" for n in range(2 if listing == "1h_train" else 1)
            ]
            lines = [f"{u} {lang} Hello, [noise] world {u[-1]}!" for u in utts]
            write_text(folder / f"transcript_{listing}.txt", "\n".join(lines) + "\n")
            for u in utts:
                noise_wav(folder / "wav" / f"{u}.wav", 0.1)
    return root
