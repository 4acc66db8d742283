"""The :class:`Upstream` interface shared by every model family, and its batching helpers.

An upstream maps 16 kHz mono waveforms to hidden states ``(L, T, D)``: L = every hidden state
including the pre-transformer embedding output, T frames at ``frame_rate``, D = ``hidden_size``.
``forward`` of a list must equal forwards of each utterance alone; subclasses say how they batch
in ``policy`` and only pad where a test proves padding exact for the family.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from featcache.errors import AudioError

SAMPLE_RATE = 16000

# Config keys that describe how a checkpoint was saved, not what the model computes.
_VOLATILE_CONFIG_KEYS = (
    "transformers_version",
    "_name_or_path",
    "_commit_hash",
    "torch_dtype",
    "dtype",
    "_attn_implementation",
    "_attn_implementation_autoset",
    "_attn_implementation_internal",
    "architectures",
)


def config_sha256(config: dict) -> str:
    """sha256 of a config's canonical JSON (sorted keys, no whitespace, save-time keys dropped)."""
    clean = {k: v for k, v in config.items() if k not in _VOLATILE_CONFIG_KEYS}
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Upstream:
    """A speech model that maps waveforms to all of its hidden layers.

    Attributes
    ----------
    name : str
        The name it was loaded by (registry name, hub id, folder, ``fbank``, ``random:...``).
    slug : str
        File-system-safe store name, see :func:`featcache.upstreams.upstream_slug`.
    sample_rate : int
        Input rate in Hz (16000).
    frame_rate : float
        Output frames per second.
    num_layers : int
        L, the number of hidden states including the embedding output.
    hidden_size : int
        D.
    min_samples : int
        Shortest input that yields one frame; shorter audio raises :class:`AudioError`.
    device : torch.device
        Where the model runs.
    provenance : dict
        name, source, revision, architecture, config_sha256, frame_rate, num_layers, hidden_size.
    policy : dict
        How ``forward`` batches, pads and windows (recorded in the store's attrs).
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, *, name, slug, frame_rate, num_layers, hidden_size, min_samples, device):
        self.name = name
        self.slug = slug
        self.frame_rate = float(frame_rate)
        self.num_layers = int(num_layers)
        self.hidden_size = int(hidden_size)
        self.min_samples = int(min_samples)
        self.device = device
        self.provenance: dict = {}
        self.policy: dict = {}

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.name!r}, L={self.num_layers}, D={self.hidden_size}, "
            f"{self.frame_rate:g} frames/s, device={self.device})"
        )

    def describe(self, source, revision, architecture: str, model_config: dict, **extra) -> dict:
        """The provenance dict every store records for this upstream (see the class attributes)."""
        return {
            "name": self.name,
            "source": source,
            "revision": revision,
            "architecture": architecture,
            "config_sha256": config_sha256(model_config),
            "frame_rate": self.frame_rate,
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            **extra,
        }

    def num_frames(self, num_samples: int) -> int:
        """Number of output frames T for a waveform of ``num_samples`` samples."""
        raise NotImplementedError

    def check_length(self, num_samples: int, where: str = "audio") -> None:
        """Raise :class:`AudioError` if ``num_samples`` is too short to give one frame.

        Parameters
        ----------
        num_samples : int
            Length of the waveform at 16 kHz.
        where : str
            What to name in the message (an utterance id, or a position in a batch).
        """
        if num_samples < self.min_samples:
            raise AudioError(
                f"{where}: {num_samples} samples ({num_samples / SAMPLE_RATE * 1000:.1f} ms) is "
                f"shorter than the {self.min_samples} samples "
                f"({self.min_samples / SAMPLE_RATE * 1000:.1f} ms) upstream {self.name!r} needs for "
                f"one frame; drop the utterance or fix its segment times"
            )

    def forward(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the model on a list of waveforms.

        Parameters
        ----------
        wavs : list of np.ndarray
            1-D float waveforms at 16 kHz (float32 preferred; others are converted).

        Returns
        -------
        list of np.ndarray
            One float32 array ``(L, T, D)`` per waveform, on the CPU, with
            ``T == self.num_frames(len(wav))``; equal (within float32 tolerance) to a forward of
            that waveform alone.

        Raises
        ------
        AudioError
            If a waveform is not 1-D or too short (the message names its position).
        """
        checked = []
        for i, wav in enumerate(wavs):
            wav = np.ascontiguousarray(wav, dtype=np.float32)
            if wav.ndim != 1:
                raise AudioError(
                    f"waveform {i} of the batch has shape {wav.shape}; pass 1-D mono audio at "
                    f"{SAMPLE_RATE} Hz (featcache.audio.load_audio downmixes and resamples)"
                )
            self.check_length(len(wav), where=f"waveform {i} of the batch")
            checked.append(wav)
        if not checked:
            return []
        outputs = self._forward(checked)
        for wav, out in zip(checked, outputs, strict=True):
            expected = (self.num_layers, self.num_frames(len(wav)), self.hidden_size)
            if out.shape != expected:  # a bug in featcache, not a user error
                raise RuntimeError(f"{self.name}: output {out.shape} != expected {expected}")
        return outputs

    def _forward(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


def plan_batches(lengths, mode: str, max_batch: int | None = None) -> list[list[int]]:
    """Group utterance indices into batches the way a batching policy allows.

    Parameters
    ----------
    lengths : sequence of int
        Waveform lengths in samples.
    mode : {"padded", "equal-length", "single"}
        ``padded``: any lengths together (sorted by length to limit padding); ``equal-length``:
        only identical lengths together; ``single``: one utterance per batch.
    max_batch : int, optional
        Most utterances per batch.

    Returns
    -------
    list of list of int
        Every index exactly once.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if mode == "single":
        groups = [[i] for i in order]
    elif mode == "padded":
        groups = [order] if order else []
    elif mode == "equal-length":
        groups = []
        for i in order:
            if groups and lengths[groups[-1][0]] == lengths[i]:
                groups[-1].append(i)
            else:
                groups.append([i])
    else:
        raise ValueError(f"unknown batching mode {mode!r}")
    if max_batch:
        groups = [g[k : k + max_batch] for g in groups for k in range(0, len(g), max_batch)]
    return groups
