"""Random-initialised configs of each family: ``random:tiny-<family>`` and ``random:<family>-base``.

These models are UNTRAINED: their layers mean nothing, they exist for tests, offline demos and
benchmarks. The weights are seeded from the name, so the same name always gives the same model.

- ``random:tiny-<family>`` (hubert, wav2vec2, wavlm, data2vec, whisper): hidden 32, 2 layers,
  the real convolutional front end (400-sample receptive field, 320-sample hop; Whisper's 30 s
  windows), milliseconds per forward.
- ``random:tiny-<family>-ln`` (hubert, wav2vec2, wavlm): the layer-norm front end and pre-norm
  encoder of the *large* checkpoints (``feat_extract_norm="layer"``, ``do_stable_layer_norm``),
  the variant that batches with padding exactly.
- ``random:<family>-base``: 768 x 12 base-size configs (Whisper: the 768 x 12 encoder of
  whisper-small), for benchmarks.
"""

from __future__ import annotations

import hashlib

from featcache.errors import UpstreamError

FAMILIES = ("hubert", "wav2vec2", "wavlm", "data2vec", "whisper")
LAYER_NORM_FAMILIES = ("hubert", "wav2vec2", "wavlm")

_TINY_SSL = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(16,) * 7,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    vocab_size=8,
)
_TINY_WHISPER = dict(
    d_model=32,
    encoder_layers=2,
    encoder_attention_heads=2,
    encoder_ffn_dim=64,
    decoder_layers=1,
    decoder_attention_heads=2,
    decoder_ffn_dim=64,
    vocab_size=64,
    num_mel_bins=80,
    max_source_positions=1500,
    max_target_positions=32,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    decoder_start_token_id=1,
)
_BASE_WHISPER = dict(
    d_model=768,
    encoder_layers=12,
    encoder_attention_heads=12,
    encoder_ffn_dim=3072,
    decoder_layers=1,
    decoder_attention_heads=12,
    decoder_ffn_dim=3072,
    num_mel_bins=80,
)


def family_classes(family):
    """(config class, base model class) of a family name."""
    import transformers as tf

    classes = {
        "hubert": (tf.HubertConfig, tf.HubertModel),
        "wav2vec2": (tf.Wav2Vec2Config, tf.Wav2Vec2Model),
        "wavlm": (tf.WavLMConfig, tf.WavLMModel),
        "data2vec": (tf.Data2VecAudioConfig, tf.Data2VecAudioModel),
        "whisper": (tf.WhisperConfig, tf.WhisperModel),
    }
    return classes[family]


def random_config(spec: str):
    """The transformers config for a random spec such as ``tiny-hubert`` or ``wavlm-base``.

    Raises
    ------
    UpstreamError
        For an unknown spec (the message lists the valid ones).
    """
    size, family, layer_norm = _parse(spec)
    config_cls, _ = family_classes(family)
    if family == "whisper":
        kwargs = dict(_TINY_WHISPER if size == "tiny" else _BASE_WHISPER)
    elif size == "tiny":
        kwargs = dict(_TINY_SSL)
    else:
        kwargs = {}  # the family's defaults are the 768 x 12 base configs
    if layer_norm:
        kwargs.update(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)
    return config_cls(**kwargs)


def random_specs() -> list[str]:
    """Every valid spec after ``random:``."""
    specs = [f"tiny-{f}" for f in FAMILIES] + [f"tiny-{f}-ln" for f in LAYER_NORM_FAMILIES]
    return specs + [f"{f}-base" for f in FAMILIES]


def seed_of(spec: str) -> int:
    """A stable seed derived from the spec, so a name always gives the same weights."""
    return int(hashlib.sha256(spec.encode()).hexdigest()[:8], 16)


def build_random_model(spec: str):
    """A seeded, random-initialised model for ``spec`` (Whisper: the encoder only), in eval mode."""
    import torch

    config = random_config(spec)
    _, family, _ = _parse(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_of(spec))
        if family == "whisper":
            from transformers.models.whisper.modeling_whisper import WhisperEncoder

            model = WhisperEncoder(config)
        else:
            model = family_classes(family)[1](config)
    return model.eval()


def _parse(spec):
    parts = spec.split("-")
    if parts[0] == "tiny" and len(parts) in (2, 3):
        family, suffix = parts[1], parts[2:]
        if family in FAMILIES and (
            not suffix or (suffix == ["ln"] and family in LAYER_NORM_FAMILIES)
        ):
            return "tiny", family, bool(suffix)
    if len(parts) == 2 and parts[0] in FAMILIES and parts[1] == "base":
        return "base", parts[0], False
    raise UpstreamError(
        f"unknown random upstream 'random:{spec}'; use one of: "
        + ", ".join(f"random:{s}" for s in random_specs())
    )
