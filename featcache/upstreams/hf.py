"""Self-supervised waveform models from transformers: wav2vec2, HuBERT, WavLM, data2vec-audio.

Any other transformers audio model that takes ``input_values`` and returns ``hidden_states`` also
works (batched only at equal lengths). Frames: the convolutional front end with kernels k_i and
strides s_i gives ``T = floor((n - k_i) / s_i) + 1`` applied layer by layer; for the standard
stack (10,3,3,3,3,2,2)/(5,2,2,2,2,2,2) that is ``T = floor((n - 400) / 320) + 1`` for
n >= 400 samples: 50 frames/s, 25 ms receptive field.

Batching (measured in tests/test_upstreams_padding.py): zero padding changes the layers of models
with a group-norm front end (the norm spans time) and of data2vec-audio even with an attention mask
(its stacked positional convolutions see the padding). Models with a layer-norm front end
(``feat_extract_norm="layer"``: wav2vec2/HuBERT/WavLM large) given an attention mask are exact
when padded. So: ``padded`` batching with a mask for those, ``equal-length`` batching otherwise.
"""

from __future__ import annotations

import warnings

import numpy as np

from featcache.errors import UpstreamError
from featcache.upstreams.base import Upstream, plan_batches
from featcache.upstreams.device import autocast_context, host_buffer, to_device

FAMILY_CLASSES = {
    "wav2vec2": "Wav2Vec2Model",
    "hubert": "HubertModel",
    "wavlm": "WavLMModel",
    "data2vec-audio": "Data2VecAudioModel",
}
PADDING_EXACT_FAMILIES = ("wav2vec2", "hubert", "wavlm")
STANDARD_STACK = ((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2))  # kernels, strides


def model_class(model_type: str):
    """The transformers base-model class for a config's ``model_type`` (AutoModel if unknown)."""
    import transformers

    return getattr(transformers, FAMILY_CLASSES.get(model_type, "AutoModel"))


def conv_frames(num_samples: int, kernels, strides) -> int:
    """Frames out of a stack of unpadded 1-D convolutions (0 if too short)."""
    n = int(num_samples)
    for k, s in zip(kernels, strides, strict=True):
        if n < k:
            return 0
        n = (n - k) // s + 1
    return n


def receptive_field(kernels, strides) -> int:
    """Samples one output frame sees: the shortest input that gives a frame."""
    field, jump = 1, 1
    for k, s in zip(kernels, strides, strict=True):
        field += (k - 1) * jump
        jump *= s
    return field


class SSLUpstream(Upstream):
    """A transformers waveform model as an upstream.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A base model (no head) whose forward takes ``input_values`` and returns hidden_states.
    name, slug : str
        See :class:`Upstream`.
    source : str
        Hub id, absolute folder, or "random-init config".
    revision : str or None
        Commit of the checkpoint, where known.
    device : torch.device
    normalize : bool
        Per-utterance zero-mean unit-variance input (the checkpoint's ``do_normalize``).
    autocast : torch.dtype or None
        Run the forward under autocast (an explicit, inexact option).
    max_batch : int, optional
        Most utterances per forward call.
    extra_provenance : dict, optional
        Merged into ``provenance`` (e.g. ``dropped_keys``, ``seed``).
    """

    def __init__(
        self,
        model,
        *,
        name,
        slug,
        source,
        revision,
        device,
        normalize=False,
        autocast=None,
        max_batch=None,
        extra_provenance=None,
    ):
        config = model.config
        kernels, strides = (
            getattr(config, "conv_kernel", None),
            getattr(config, "conv_stride", None),
        )
        if kernels is None or strides is None:
            raise UpstreamError(
                f"upstream {name!r} ({type(model).__name__}) has no conv_kernel/conv_stride in its "
                f"config, so its frame count is unknown; use a wav2vec2-style waveform model"
            )
        self._kernels, self._strides = list(kernels), list(strides)
        hop = int(np.prod(self._strides))
        super().__init__(
            name=name,
            slug=slug,
            frame_rate=self.sample_rate / hop,
            num_layers=config.num_hidden_layers + 1,
            hidden_size=config.hidden_size,
            min_samples=receptive_field(self._kernels, self._strides),
            device=device,
        )
        self.model = model.eval().to(device)
        self.normalize = bool(normalize)
        self._autocast = autocast
        self._max_batch = max_batch
        family = config.model_type
        padded = (
            family in PADDING_EXACT_FAMILIES and getattr(config, "feat_extract_norm", "") == "layer"
        )
        self._mode = "padded" if padded else "equal-length"
        self.policy = {
            "batching": self._mode,
            "attention_mask": padded,
            "padding": "zeros + attention mask (proven exact for layer-norm front ends)"
            if padded
            else "none: only utterances of identical length share a batch",
            "window": "none (whole utterance in one forward)",
            "frames": f"conv stack, T = floor((n - {self.min_samples}) / {hop}) + 1"
            if self._standard_stack()
            else "conv stack, layer by layer: T = floor((T - k) / s) + 1",
            "input_normalization": "per-utterance zero mean, unit variance"
            if normalize
            else "none",
            "autocast": str(autocast).replace("torch.", "") if autocast is not None else None,
        }
        self.provenance = self.describe(
            source, revision, type(model).__name__, config.to_dict(), **(extra_provenance or {})
        )

    def _standard_stack(self):
        return (tuple(self._kernels), tuple(self._strides)) == STANDARD_STACK

    def num_frames(self, num_samples: int) -> int:
        """T for n samples: the conv front end layer by layer, ``T = floor((T - k) / s) + 1``.

        For the standard wav2vec2 stack this equals ``floor((n - 400) / 320) + 1`` (n >= 400).
        """
        return conv_frames(num_samples, self._kernels, self._strides)

    def _forward(self, wavs):
        lengths = [len(w) for w in wavs]
        outputs = [None] * len(wavs)
        for group in plan_batches(lengths, self._mode, self._max_batch):
            for i, out in zip(group, self._forward_batch([wavs[i] for i in group]), strict=True):
                outputs[i] = out
        return outputs

    def _forward_batch(self, wavs):
        import torch

        lengths = [len(w) for w in wavs]
        width = max(lengths)
        if len(wavs) == 1 and self.device.type == "cpu":
            batch = torch.from_numpy(wavs[0])[None]  # (1, n): no copy
        else:
            batch = host_buffer((len(wavs), width), self.device)  # (B, n_max), zero padded
            for b, wav in enumerate(wavs):
                batch[b, : lengths[b]] = torch.from_numpy(wav)
        mask = None
        if width != min(lengths):
            mask = host_buffer((len(wavs), width), self.device, dtype=torch.long)  # (B, n_max)
            for b, n in enumerate(lengths):
                mask[b, :n] = 1
            mask = to_device(mask, self.device)
        batch = to_device(batch, self.device)
        if self.normalize:
            batch = torch.stack(
                [_zero_mean_unit_var(row, n) for row, n in zip(batch, lengths, strict=True)]
            )
        with warnings.catch_warnings(), torch.inference_mode():
            # WavLM passes a long padding mask and a float bias to torch's attention
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            with autocast_context(self.device, self._autocast):
                out = self.model(
                    batch, attention_mask=mask, output_hidden_states=True, return_dict=True
                )
        hidden = out.hidden_states
        if len(hidden) != self.num_layers:
            raise UpstreamError(
                f"upstream {self.name!r} returned {len(hidden)} hidden states, expected "
                f"num_hidden_layers + 1 = {self.num_layers}; layer drop or a custom model class?"
            )
        stacked = torch.stack(hidden).float().cpu().numpy()  # (L, B, T_max, D)
        return [stacked[:, b, : self.num_frames(n)] for b, n in enumerate(lengths)]  # (L, T, D)


def _zero_mean_unit_var(row, n):
    """transformers' Wav2Vec2FeatureExtractor normalisation over the real samples only."""
    real = row[:n]
    out = row.clone()
    out[:n] = (real - real.mean()) / (real.var(unbiased=False) + 1e-7).sqrt()
    out[n:] = 0.0
    return out
