"""Whisper's encoder as an upstream (the decoder is never kept).

Whisper's encoder only takes 30 s of log-mel input (3000 mel frames -> 1500 frames, 50 frames/s).
Policy, recorded in ``Upstream.policy``:

- the waveform is cut into consecutive 30 s windows (480000 samples); each window is zero padded
  to 30 s and turned into a log-mel spectrogram exactly as ``WhisperFeatureExtractor`` does
  (80 mel bins, or the checkpoint's ``num_mel_bins``; its torch formula, run on the device);
- of each window's 1500 encoder frames, only those covering real audio are kept: frame i is
  centred on sample 320 i, so a window of m real samples keeps ``ceil(m / 320)`` frames;
- the kept frames of all windows are concatenated, so ``T = ceil(n / 320)`` for n samples.

Every window is padded to the same 30 s, so windows of different utterances batch exactly.
"""

from __future__ import annotations

import math

from featcache.errors import UpstreamError
from featcache.upstreams.base import Upstream
from featcache.upstreams.device import autocast_context, host_buffer, to_device


class WhisperUpstream(Upstream):
    """The encoder of a Whisper checkpoint.

    Parameters
    ----------
    encoder : transformers WhisperEncoder
    feature_extractor : transformers.WhisperFeatureExtractor
        Its mel filters, FFT size and hop are used (once, at construction).
    name, slug, source, revision, device, autocast, extra_provenance
        As for :class:`featcache.upstreams.hf.SSLUpstream`.
    max_windows : int
        Most 30 s windows per encoder call.
    """

    def __init__(
        self,
        encoder,
        feature_extractor,
        *,
        name,
        slug,
        source,
        revision,
        device,
        autocast=None,
        max_windows=8,
        extra_provenance=None,
    ):
        import torch

        config = encoder.config
        fe = feature_extractor
        self.window_samples = fe.n_samples  # 480000
        self.frames_per_window = config.max_source_positions  # 1500
        self.hop_samples = self.window_samples // self.frames_per_window  # 320
        super().__init__(
            name=name,
            slug=slug,
            frame_rate=self.sample_rate / self.hop_samples,
            num_layers=config.encoder_layers + 1,
            hidden_size=config.d_model,
            min_samples=1,
            device=device,
        )
        self.model = encoder.eval().to(device)
        self._n_fft, self._hop = fe.n_fft, fe.hop_length
        self._window = torch.hann_window(fe.n_fft, device=device)
        self._mel_filters = torch.from_numpy(fe.mel_filters).float().T.contiguous().to(device)
        self._autocast = autocast
        self._max_windows = max_windows
        self.policy = {
            "batching": "padded-30s-windows",
            "attention_mask": False,
            "padding": "every window zero padded to 30 s (as Whisper was trained); batch-independent",
            "window": f"consecutive {self.window_samples / self.sample_rate:g} s windows, concatenated",
            "frames": f"keep ceil(m / {self.hop_samples}) of {self.frames_per_window} frames per "
            f"window of m real samples; T = ceil(n / {self.hop_samples})",
            "mel": f"WhisperFeatureExtractor log-mel, {fe.feature_size} bins",
            "input_normalization": "none",
            "autocast": str(autocast).replace("torch.", "") if autocast is not None else None,
        }
        self.provenance = self.describe(
            source, revision, type(encoder).__name__, config.to_dict(), **(extra_provenance or {})
        )

    def num_frames(self, num_samples: int) -> int:
        """T = ceil(n / 320): frames whose centre (sample 320 i) lies inside the audio.

        Audio longer than 30 s is cut into 30 s windows; 480000 / 320 = 1500 frames per full
        window, so the per-window counts add up to the same formula.
        """
        return math.ceil(num_samples / self.hop_samples)

    def log_mel(self, windows):
        """``WhisperFeatureExtractor``'s log-mel of 30 s windows ``(B, 480000)`` -> ``(B, M, 3000)``."""
        import torch

        stft = torch.stft(windows, self._n_fft, self._hop, window=self._window, return_complex=True)
        power = (stft[..., :-1].abs() ** 2).contiguous()  # (B, F, 3000)
        mel = self._mel_filters @ power  # (B, M, 3000)
        log_spec = mel.clamp(min=1e-10).log10()
        peak = log_spec.amax(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        log_spec = torch.maximum(log_spec, peak - 8.0)
        return (log_spec + 4.0) / 4.0

    def _forward(self, wavs):
        import numpy as np
        import torch

        # every (utterance, window start, real samples) in order
        pieces = [
            (u, start, min(self.window_samples, len(wav) - start))
            for u, wav in enumerate(wavs)
            for start in range(0, len(wav), self.window_samples)
        ]
        kept = [[] for _ in wavs]
        for k in range(0, len(pieces), self._max_windows):
            chunk = pieces[k : k + self._max_windows]
            batch = host_buffer((len(chunk), self.window_samples), self.device)  # (B, 480000)
            for b, (u, start, m) in enumerate(chunk):
                batch[b, :m] = torch.from_numpy(wavs[u][start : start + m])
            batch = to_device(batch, self.device)
            with torch.inference_mode():
                mel = self.log_mel(batch)  # (B, M, 3000)
                with autocast_context(self.device, self._autocast):
                    out = self.model(mel, output_hidden_states=True, return_dict=True)
            hidden = out.hidden_states
            if len(hidden) != self.num_layers:
                raise UpstreamError(
                    f"upstream {self.name!r} returned {len(hidden)} hidden states, expected "
                    f"encoder_layers + 1 = {self.num_layers}"
                )
            stacked = torch.stack(hidden).float().cpu().numpy()  # (L, B, 1500, D)
            for b, (u, _, m) in enumerate(chunk):
                kept[u].append(stacked[:, b, : math.ceil(m / self.hop_samples)])  # (L, t, D)
        return [parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1) for parts in kept]
