"""Tiny random-initialised models of each upstream family, checkpoint folders, direct forwards.

For tests of the upstreams and of everything built on them (store, extract): build a tiny model,
save it as a transformers checkpoint folder (the "local folder" path of ``load_upstream``), and
compute the reference hidden states of one utterance with a plain transformers forward, written
independently of :mod:`featcache.upstreams`' batching and windowing code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from featcache.upstreams.random import FAMILIES, LAYER_NORM_FAMILIES, family_classes, random_config

__all__ = [
    "FAMILIES",
    "LAYER_NORM_FAMILIES",
    "direct_forward",
    "save_tiny_checkpoint",
    "tiny_config",
    "tiny_model",
]


def tiny_config(family: str, layer_norm: bool = False, **overrides):
    """The ``random:tiny-<family>[-ln]`` config, with keyword overrides (e.g. ``layerdrop=0.5``)."""
    config = random_config(f"tiny-{family}" + ("-ln" if layer_norm else ""))
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def tiny_model(
    family: str, layer_norm: bool = False, seed: int = 0, head: str | None = None, **overrides
):
    """A seeded tiny model in eval mode.

    Parameters
    ----------
    family : {"hubert", "wav2vec2", "wavlm", "data2vec", "whisper"}
    layer_norm : bool
        The layer-norm front end of the large checkpoints (hubert, wav2vec2, wavlm).
    seed : int
    head : {None, "ctc"}
        Add a CTC head (``...ForCTC``) around the base model, as fine-tuned checkpoints have;
        Whisper always comes as the full encoder-decoder ``WhisperModel``.
    **overrides
        Config attributes to change.
    """
    import torch
    import transformers

    config = tiny_config(family, layer_norm, **overrides)
    cls = family_classes(family)[1]
    if head == "ctc":
        cls = getattr(transformers, cls.__name__.replace("Model", "ForCTC"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    return model.eval()


def save_tiny_checkpoint(
    folder,
    family: str,
    layer_norm: bool = False,
    seed: int = 0,
    head: str | None = None,
    encoder_only: bool = False,
    do_normalize: bool | None = None,
    **overrides,
) -> Path:
    """Save a tiny model as a transformers checkpoint folder and return the folder.

    Parameters
    ----------
    folder : path
        Created if needed; receives config.json and model.safetensors.
    family, layer_norm, seed, head, **overrides
        See :func:`tiny_model`.
    encoder_only : bool
        Whisper only: save just the ``WhisperEncoder`` (keys ``conv1.*``, ``layers.*``).
    do_normalize : bool, optional
        Write a preprocessor_config.json with this ``do_normalize`` (SSL families).
    """
    folder = Path(folder)
    model = tiny_model(family, layer_norm, seed=seed, head=head, **overrides)
    if encoder_only:
        model = model.encoder
    model.save_pretrained(str(folder))
    if do_normalize is not None:
        preprocessor = {
            "do_normalize": bool(do_normalize),
            "feature_extractor_type": "Wav2Vec2FeatureExtractor",
            "feature_size": 1,
            "padding_side": "right",
            "padding_value": 0.0,
            "return_attention_mask": bool(layer_norm),
            "sampling_rate": 16000,
        }
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    return folder


def direct_forward(model, wav: np.ndarray, normalize: bool = False) -> np.ndarray:
    """Reference hidden states ``(L, T, D)`` of one utterance, with a plain transformers forward.

    SSL models: one unpadded forward of the whole waveform (optionally zero-mean unit-variance, as
    ``Wav2Vec2FeatureExtractor(do_normalize=True)``). Whisper (a ``WhisperEncoder`` or a model
    with ``.encoder``): ``WhisperFeatureExtractor`` on each 30 s window, one encoder forward per
    window, keeping ``ceil(m / 320)`` frames of a window of m samples, concatenated.
    """
    import torch

    wav = np.asarray(wav, dtype=np.float32)
    model = model.eval()
    if model.config.model_type == "whisper":
        return _direct_whisper(getattr(model, "encoder", model), wav)
    x = wav
    if normalize:
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    with torch.inference_mode():
        out = model(torch.from_numpy(x)[None], output_hidden_states=True)
    return torch.stack(out.hidden_states)[:, 0].float().numpy()  # (L, T, D)


def _direct_whisper(encoder, wav):
    import torch
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(feature_size=encoder.config.num_mel_bins)
    kept = []
    for start in range(0, len(wav), fe.n_samples):
        window = wav[start : start + fe.n_samples]
        features = fe(window, sampling_rate=16000, return_tensors="pt").input_features
        with torch.inference_mode():
            hidden = encoder(features, output_hidden_states=True).hidden_states
        frames = math.ceil(len(window) / (fe.n_samples // encoder.config.max_source_positions))
        kept.append(torch.stack(hidden)[:, 0, :frames].float().numpy())  # (L, t, D)
    return np.concatenate(kept, axis=1)


def fake_hub_cache(root, models: dict[str, str]) -> Path:
    """A model-hub cache folder holding tiny checkpoints under real hub ids, for offline tests.

    Parameters
    ----------
    root : path
        The folder to use as ``HF_HUB_CACHE``.
    models : dict
        Hub id (``facebook/hubert-base-ls960``) -> tiny family (``hubert``, ``whisper``, ...).

    Returns
    -------
    Path
        ``root``, laid out as the hub library's cache (``models--org--name/refs/main`` naming a
        ``snapshots/<commit>`` folder), so ``HF_HUB_OFFLINE=1`` resolves each id to its tiny model.
    """
    import hashlib

    root = Path(root)
    for repo_id, family in models.items():
        repo = root / f"models--{repo_id.replace('/', '--')}"
        commit = hashlib.sha1(repo_id.encode()).hexdigest()
        save_tiny_checkpoint(repo / "snapshots" / commit, family)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
    return root
