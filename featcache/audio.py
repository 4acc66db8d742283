"""Audio loading: any manifest entry to a float32 mono waveform at 16 kHz.

Decoding uses soundfile (libsndfile: wav, flac, ogg/vorbis, mp3 where the library has it), only the
requested segment is read from disk, channels are selected or averaged, and other sample rates are
resampled with soxr (a maintained, fast, high-quality resampler; no torchaudio here).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from featcache.errors import AudioError

SAMPLE_RATE = 16000
# tolerance when a segment ends just past the end of a file (rounding in manifests), seconds
_END_SLACK = 0.010


def audio_info(path: str | os.PathLike):
    """``soundfile.info`` of a file, raising :class:`AudioError` when it cannot be decoded."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file {path} not found")
    if path.is_dir():
        raise AudioError(f"audio path {path} is a folder, not a file")
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile reports every decode problem the same way
        raise AudioError(f"cannot decode {path} as audio ({_short(e)})") from None
    _check_wav_length(path, info)
    return info


def load_audio(
    path: str | os.PathLike,
    *,
    start: float = 0.0,
    duration: float | None = None,
    channel: int | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Read a file (or a segment of it) as float32 mono at ``sample_rate``.

    Parameters
    ----------
    path : audio file readable by soundfile.
    start, duration : segment in seconds; ``duration=None`` reads to the end.
    channel : 0-based channel to keep; ``None`` averages all channels.
    sample_rate : output rate; other rates are resampled with soxr.

    Returns
    -------
    np.ndarray, float32, shape (num_samples,)
    """
    import soundfile as sf

    info = audio_info(path)
    total = info.frames / info.samplerate
    if info.frames == 0:
        raise AudioError(f"audio file {path} is empty (0 samples)")
    if start < 0 or start >= total:
        raise AudioError(
            f"segment start {start:.3f} s is outside {path} ({total:.3f} s long); fix 'start'"
        )
    if duration is not None and start + duration > total + _END_SLACK:
        raise AudioError(
            f"segment {start:.3f}+{duration:.3f} s runs past the end of {path} "
            f"({total:.3f} s long); fix 'start'/'duration' or the file is truncated"
        )
    if channel is not None and channel >= info.channels:
        raise AudioError(f"channel {channel} requested but {path} has {info.channels} channel(s)")
    first = int(round(start * info.samplerate))
    frames = -1 if duration is None else int(round(duration * info.samplerate))
    frames = min(frames, info.frames - first) if frames >= 0 else -1
    try:
        data, sr = sf.read(
            str(path), start=first, frames=frames, dtype="float32", always_2d=True
        )  # (n, C)
    except Exception as e:
        raise AudioError(
            f"cannot decode {path}: file is corrupt or truncated ({_short(e)})"
        ) from None
    if data.shape[0] == 0:
        raise AudioError(f"no audio samples in the requested segment of {path}")
    mono = data[:, channel] if channel is not None else data.mean(axis=1)  # (n,)
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"audio file {path} holds NaN or infinite samples")
    if sr != sample_rate:
        mono = resample(mono, sr, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def load_utterance(utt, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Load a :class:`featcache.manifest.Utterance`; errors name the utterance id."""
    try:
        return load_audio(
            utt.audio,
            start=utt.start,
            duration=utt.duration,
            channel=utt.channel,
            sample_rate=sample_rate,
        )
    except AudioError as e:
        raise AudioError(f"utterance {utt.id!r}: {e}") from None


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D float32 signal with soxr (high quality, deterministic)."""
    import soxr

    return soxr.resample(wav, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


class AudioInfoCache:
    """Checks manifest entries against their audio files, opening each file once."""

    def __init__(self):
        self._infos: dict[str, object] = {}

    def info(self, path: str):
        if path not in self._infos:
            try:
                self._infos[path] = audio_info(path)
            except AudioError as e:
                self._infos[path] = e
        return self._infos[path]

    def check(self, utt) -> str | None:
        """A one-line description of what is wrong with ``utt``'s audio, or None."""
        info = self.info(utt.audio)
        if isinstance(info, AudioError):
            return str(info)
        if info.frames == 0:
            return f"audio file {utt.audio} is empty (0 samples)"
        total = info.frames / info.samplerate
        if utt.start >= total:
            return f"segment start {utt.start:.3f} s is past the end of {utt.audio} ({total:.3f} s)"
        if utt.duration is not None and utt.start + utt.duration > total + _END_SLACK:
            return (
                f"segment {utt.start:.3f}+{utt.duration:.3f} s runs past the end of "
                f"{utt.audio} ({total:.3f} s)"
            )
        if utt.channel is not None and utt.channel >= info.channels:
            return f"channel {utt.channel} requested but {utt.audio} has {info.channels} channel(s)"
        return None


def _check_wav_length(path: Path, info) -> None:
    """Raise if a RIFF/WAVE header promises more data than the file holds (a cut-off copy).

    libsndfile silently shortens such files; a cache built from them would be silently wrong.
    """
    if info.format != "WAV":
        return
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                return
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                # 0 and 0xFFFFFFFF mean "unknown" (streamed writers); trust libsndfile then
                if csize not in (0, 0xFFFFFFFF) and pos + 8 + csize > size:
                    have = (size - pos - 8) / max(1, csize) * 100
                    raise AudioError(
                        f"{path} is truncated: its header announces {csize} bytes of audio but "
                        f"only {have:.0f}% are present; re-copy or re-encode the file"
                    )
                return
            pos += 8 + csize + (csize & 1)


def _short(e: Exception) -> str:
    return " ".join(str(e).split())[:200]
