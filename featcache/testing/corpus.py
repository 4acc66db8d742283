"""Tiny audio corpora for tests: generated tones or noise (no dependencies), or espeak-ng speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featcache.manifest import Manifest, write_manifest

SAMPLE_RATE = 16000


def make_tone_corpus(
    out: str | Path,
    utterances: int = 12,
    classes: int = 3,
    seconds: tuple[float, float] = (0.5, 1.5),
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
) -> Manifest:
    """Write ``utterances`` wav files whose ``label`` sets the pitch of a harmonic tone in noise.

    Lengths vary (uniform in ``seconds``, rounded to 10 ms) so that batching code meets unequal
    lengths; every class appears in every split when ``utterances >= 5 * classes``.
    """
    rng = np.random.default_rng(seed)
    out = Path(out)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(utterances):
        label = i % classes
        n = int(round(rng.uniform(*seconds), 2) * sample_rate)
        t = np.arange(n) / sample_rate
        f0 = 110.0 * (1.5**label) * rng.uniform(0.97, 1.03)
        wav = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
        wav = 0.3 * wav / np.abs(wav).max() + 0.02 * rng.standard_normal(n)
        path = out / "wav" / f"utt{i:03d}.wav"
        write_wav(path, wav.astype(np.float32), sample_rate)
        split = ("train", "train", "train", "dev", "test")[(i // classes) % 5]
        records.append(
            {
                "id": f"utt{i:03d}",
                "audio": f"wav/utt{i:03d}.wav",
                "label": f"class{label}",
                "speaker": f"spk{i % 4}",
                "split": split,
            }
        )
    return Manifest.load(write_manifest(records, out / "manifest.jsonl"))


def make_noise_corpus(
    out: str | Path,
    seconds,
    *,
    seed: int = 0,
    splits: tuple[str, ...] | None = None,
    speakers: int | None = None,
) -> Path:
    """White-noise utterances ``u0``, ``u1``, ... of the given lengths and ``OUT/m.jsonl``.

    For tests that need audio but no labels tied to it (scale-out, object storage).

    Parameters
    ----------
    out : str or Path
        Folder for the wav files and the manifest.
    seconds : sequence of float
        Length of each utterance; one utterance per entry.
    seed : int
        Seed of the noise (drawn utterance by utterance, in order).
    splits : tuple of str, optional
        Split of utterance i: ``splits[i % len(splits)]``; no split field when None.
    speakers : int, optional
        ``spk`` field ``s{i % speakers}``; none when None.

    Returns
    -------
    Path
        The manifest (audio paths relative to ``out``).
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    records = []
    for i, length in enumerate(seconds):
        wav = 0.1 * rng.standard_normal(int(SAMPLE_RATE * length))
        write_wav(out / f"u{i}.wav", wav.astype(np.float32))
        record = {"id": f"u{i}", "audio": f"u{i}.wav"}
        if splits:
            record["split"] = splits[i % len(splits)]
        if speakers:
            record["spk"] = f"s{i % speakers}"
        records.append(record)
    return write_manifest(records, out / "m.jsonl")


def make_speech_corpus(out: str | Path, utterances: int = 18, seed: int = 0) -> Manifest:
    """A small espeak-ng corpus with the demo labels (speaker, style, language, text)."""
    from featcache.demo_data import make_demo_corpus

    return Manifest.load(make_demo_corpus(out, utterances, seed, engines=("espeak",)))


def write_wav(path: str | Path, wav: np.ndarray, sample_rate: int = SAMPLE_RATE, subtype="PCM_16"):
    """Write a float waveform (mono (n,) or multi-channel (n, C)) with soundfile."""
    import soundfile as sf

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, sample_rate, subtype=subtype)
    return Path(path)
