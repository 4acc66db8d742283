"""Upstream models: waveform in, every hidden layer out.

``load_upstream(name)`` accepts a registry name (``hubert-base``, ``whisper-small``, ...), a
model-hub id, a local checkpoint folder, ``fbank``, or a random-initialised config
(``random:tiny-hubert``, ``random:hubert-base``; untrained, for tests and benchmarks). See
DESIGN.md "Upstreams" for the traps each family has and how they are handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from featcache.errors import UpstreamError
from featcache.upstreams.registry import REGISTRY, resolve, upstream_slug

if TYPE_CHECKING:
    from featcache.upstreams.base import Upstream

__all__ = ["REGISTRY", "Upstream", "load_upstream", "upstream_slug"]


def __getattr__(name):
    if name == "Upstream":  # numpy loads on first use, so the registry stays light
        from featcache.upstreams.base import Upstream

        return Upstream
    raise AttributeError(f"module 'featcache.upstreams' has no attribute {name!r}")


def load_upstream(
    name: str, device="cpu", *, autocast=None, max_batch=None, revision=None, cache_dir=None
) -> Upstream:
    """Load an upstream by name, ready to run in eval mode on ``device``.

    Parameters
    ----------
    name : str
        Registry name, model-hub id (``owner/name``), local checkpoint folder, ``"fbank"``, or
        ``"random:<spec>"`` (see :mod:`featcache.upstreams.random`).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    autocast : {None, "float16", "bfloat16"}
        Run forwards under autocast. None (default) is exact float32.
    max_batch : int, optional
        Most utterances (Whisper: 30 s windows, default 8) per model call.
    revision : str, optional
        Hub branch, tag or commit (hub ids and registry names only).
    cache_dir : path, optional
        Model-hub cache folder.

    Returns
    -------
    Upstream

    Raises
    ------
    UpstreamError
        Unknown name, hub unreachable or offline without a cached copy, weights that do not load
        completely.
    ConfigError
        A device or autocast option this machine cannot honour.
    """
    from featcache.upstreams.device import resolve_autocast, resolve_device

    torch_device = resolve_device(device)
    dtype = resolve_autocast(autocast)
    kind, target = resolve(name)
    common = dict(name=str(name), slug=upstream_slug(name), device=torch_device)
    if kind == "fbank":
        from featcache.upstreams.fbank import FbankUpstream

        return FbankUpstream(**common)
    if kind == "random":
        return _load_random(target, common, dtype, max_batch)
    if kind == "hub":
        from featcache.upstreams.hub import fetch

        folder = fetch(target, revision=revision, cache_dir=cache_dir)
        return load_folder(
            folder, source=target, common=common, autocast=dtype, max_batch=max_batch
        )
    return load_folder(target, source=target, common=common, autocast=dtype, max_batch=max_batch)


def _load_random(spec, common, dtype, max_batch):
    from featcache.upstreams.random import build_random_model, seed_of

    model = build_random_model(spec)
    extra = {"untrained": True, "seed": seed_of(spec)}
    args = dict(
        common, source="random-init config", revision=None, autocast=dtype, extra_provenance=extra
    )
    if model.config.model_type == "whisper":
        from transformers import WhisperFeatureExtractor

        from featcache.upstreams.whisper import WhisperUpstream

        fe = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
        return WhisperUpstream(model, fe, max_windows=max_batch or 8, **args)
    from featcache.upstreams.hf import SSLUpstream

    return SSLUpstream(model, max_batch=max_batch, **args)


def load_folder(folder, *, source, common, autocast=None, max_batch=None) -> Upstream:
    """Load a local transformers checkpoint folder (config.json + weights) as an upstream."""
    from featcache.upstreams.loading import read_json, revision_of

    folder = Path(folder)
    config = read_json(folder / "config.json")
    model_type = config.get("model_type")
    if not model_type:
        raise UpstreamError(
            f"upstream {common['name']!r}: {folder} has no config.json with a model_type; pass a "
            f"transformers checkpoint folder (config.json + model.safetensors)"
        )
    revision = revision_of(folder)
    preprocessor = read_json(folder / "preprocessor_config.json")
    if model_type == "whisper":
        return _load_whisper(folder, source, revision, common, autocast, max_batch)
    from featcache.upstreams.hf import SSLUpstream, model_class
    from featcache.upstreams.loading import load_checked

    model, dropped = load_checked(model_class(model_type), folder, name=common["name"])
    extra = {"dropped_keys": dropped} if dropped else {}
    return SSLUpstream(
        model,
        source=source,
        revision=revision,
        normalize=bool(preprocessor.get("do_normalize", False)),
        autocast=autocast,
        max_batch=max_batch,
        extra_provenance=extra,
        **common,
    )


def _load_whisper(folder, source, revision, common, autocast, max_batch):
    from transformers import WhisperFeatureExtractor, WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from featcache.upstreams.loading import checkpoint_keys, load_checked
    from featcache.upstreams.whisper import WhisperUpstream

    keys = checkpoint_keys(folder)
    if any(k.startswith(("encoder.", "model.encoder.")) for k in keys):
        model, dropped = load_checked(
            WhisperModel, folder, keep_prefix="encoder.", name=common["name"]
        )
        encoder, kept = model.encoder, "encoder of a full Whisper checkpoint (decoder discarded)"
        del model
    else:
        encoder, dropped = load_checked(WhisperEncoder, folder, name=common["name"])
        kept = "encoder-only checkpoint"
    mel_bins = encoder.config.num_mel_bins
    if (folder / "preprocessor_config.json").is_file():
        fe = WhisperFeatureExtractor.from_pretrained(str(folder))
    else:
        fe = WhisperFeatureExtractor(feature_size=mel_bins)
    if fe.feature_size != mel_bins:
        raise UpstreamError(
            f"upstream {common['name']!r}: preprocessor_config.json in {folder} has "
            f"{fe.feature_size} mel bins but the model expects {mel_bins}; fix or delete the file"
        )
    extra = {"kept": kept, **({"dropped_keys": dropped} if dropped else {})}
    return WhisperUpstream(
        encoder,
        fe,
        source=source,
        revision=revision,
        autocast=autocast,
        max_windows=max_batch or 8,
        extra_provenance=extra,
        **common,
    )
