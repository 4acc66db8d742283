"""``fbank``: 80-dim log-mel filterbank, the classical baseline (L=1, 100 frames/s).

Kaldi's ``compute-fbank-feats`` defaults (the same as ``torchaudio.compliance.kaldi.fbank``),
written with plain torch ops: 25 ms frames every 10 ms with ``snip_edges`` (no padding), no
dither, per-frame DC removal, pre-emphasis 0.97, Povey window, 512-point FFT, power spectrum,
80 triangular mel filters from 20 Hz to 8 kHz, natural log floored at float32 epsilon. The waveform
is scaled to 16-bit integer range first, as Kaldi reads a 16-bit wav file.
"""

from __future__ import annotations

import math

import numpy as np

from featcache.upstreams.base import SAMPLE_RATE, Upstream

FBANK_CONFIG = {
    "type": "kaldi-fbank",
    "num_mel_bins": 80,
    "frame_length_samples": 400,
    "frame_shift_samples": 160,
    "n_fft": 512,
    "preemphasis": 0.97,
    "window": "povey",
    "low_freq": 20.0,
    "high_freq": 8000.0,
    "remove_dc_offset": True,
    "dither": 0.0,
    "waveform_scale": 32768.0,
    "log_floor": "float32 eps",
}


def mel_scale(freq):
    """Kaldi's mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0)


def kaldi_mel_banks(num_bins=80, n_fft=512, sample_rate=SAMPLE_RATE, low=20.0, high=8000.0):
    """Triangular filters ``(num_bins, n_fft // 2 + 1)``, triangular in the mel domain (Kaldi)."""
    num_fft_bins = n_fft // 2
    freqs = np.arange(num_fft_bins) * (sample_rate / n_fft)
    mel = mel_scale(freqs)  # (F,)
    mel_low, mel_high = mel_scale(low), mel_scale(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    left = mel_low + np.arange(num_bins)[:, None] * delta  # (M, 1)
    center, right = left + delta, left + 2 * delta
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))  # (M, F)
    banks = np.pad(banks, ((0, 0), (0, 1)))  # Kaldi leaves the Nyquist bin out: (M, F + 1)
    return banks.astype(np.float32)


class FbankUpstream(Upstream):
    """Log-mel filterbank features as a one-layer upstream.

    Each frame depends only on its own 400 samples, so utterances are computed one at a time,
    vectorised over frames; the result does not depend on what else is in the batch.
    """

    def __init__(self, name="fbank", slug="fbank", device=None):
        import torch

        device = device or torch.device("cpu")
        cfg = FBANK_CONFIG
        super().__init__(
            name=name,
            slug=slug,
            frame_rate=SAMPLE_RATE / cfg["frame_shift_samples"],
            num_layers=1,
            hidden_size=cfg["num_mel_bins"],
            min_samples=cfg["frame_length_samples"],
            device=device,
        )
        n = cfg["frame_length_samples"]
        hann = 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(n, dtype=torch.float64) / (n - 1))
        self._window = hann.pow(0.85).float().to(device)  # Povey window
        banks = kaldi_mel_banks(cfg["num_mel_bins"], cfg["n_fft"], SAMPLE_RATE)
        self._banks_t = torch.from_numpy(banks).T.contiguous().to(device)  # (F + 1, M)
        self.provenance = self.describe(
            "featcache built-in (Kaldi-style log-mel filterbank)", None, "KaldiFbank", cfg,
            config=dict(cfg),
        )  # fmt: skip
        self.policy = {
            "batching": "single",
            "padding": "none (each frame sees only its own 400 samples)",
            "window": "none",
            "frames": "T = 1 + (n - 400) // 160 for n >= 400 (snip_edges)",
            "autocast": None,
        }

    def num_frames(self, num_samples: int) -> int:
        """T = 1 + (n - 400) // 160 for n >= 400 samples (Kaldi ``snip_edges``), else 0."""
        if num_samples < 400:
            return 0
        return 1 + (num_samples - 400) // 160

    def _forward(self, wavs):
        import torch

        cfg = FBANK_CONFIG
        outputs = []
        with torch.inference_mode():
            for wav in wavs:
                x = torch.from_numpy(wav).to(self.device) * cfg["waveform_scale"]  # (n,)
                frames = x.unfold(0, cfg["frame_length_samples"], cfg["frame_shift_samples"])
                frames = frames - frames.mean(dim=1, keepdim=True)  # (T, 400)
                prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
                frames = (frames - cfg["preemphasis"] * prev) * self._window
                spec = torch.fft.rfft(frames, n=cfg["n_fft"]).abs().pow(2)  # (T, 257)
                mel = spec @ self._banks_t  # (T, 80)
                logmel = mel.clamp_min(torch.finfo(torch.float32).eps).log()
                outputs.append(logmel.unsqueeze(0).cpu().numpy())  # (1, T, 80)
        return outputs
