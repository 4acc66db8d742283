"""What an upstream is, known before its weights are loaded.

Commands check every ``-u`` before they compute or write anything (a typo in the second upstream
must not cost the first one's extraction). :func:`inspect_upstream` resolves a name, finds its
checkpoint (the local hub cache, or a fetch that fails fast when the hub is unreachable), reads
its ``config.json`` and checks that weights exist, without building the model: a few
milliseconds, where loading a base model takes tens of seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from featcache.errors import UpstreamError


@dataclass(frozen=True)
class UpstreamShape:
    """An upstream's layer count and hidden size, read from its config.

    Attributes
    ----------
    name : str
        The name as the user gave it.
    kind : str
        ``fbank``, ``random``, ``folder`` or ``hub``.
    num_layers : int
        L: all hidden states including the pre-transformer output.
    hidden_size : int
        D.
    """

    name: str
    kind: str
    num_layers: int
    hidden_size: int


def inspect_upstream(name: str, *, revision=None, cache_dir=None) -> UpstreamShape:
    """Resolve ``name`` and read its layer count and hidden size without loading weights.

    Raises
    ------
    UpstreamError
        Unknown name, hub offline or unreachable without a cached copy, a folder without a
        usable ``config.json`` or without weights.
    """
    from featcache.upstreams.registry import resolve

    kind, target = resolve(name)
    if kind == "fbank":
        from featcache.upstreams.fbank import FBANK_CONFIG

        return UpstreamShape(str(name), kind, 1, FBANK_CONFIG["num_mel_bins"])
    if kind == "random":
        from featcache.upstreams.random import random_config

        return UpstreamShape(str(name), kind, *_shape_of(random_config(target).to_dict(), name))
    if kind == "hub":
        from featcache.upstreams.hub import fetch

        target = fetch(target, revision=revision, cache_dir=cache_dir)
    return UpstreamShape(str(name), kind, *_folder_shape(Path(target), name))


def _folder_shape(folder: Path, name) -> tuple[int, int]:
    from featcache.upstreams.loading import read_json

    try:
        config = read_json(folder / "config.json")
    except ValueError as exc:
        raise UpstreamError(
            f"upstream {name!r}: {folder / 'config.json'} is not valid JSON ({exc}); "
            f"re-download the checkpoint"
        ) from None
    if not config.get("model_type"):
        raise UpstreamError(
            f"upstream {name!r}: {folder} has no config.json with a model_type; pass a "
            f"transformers checkpoint folder (config.json + model.safetensors)"
        )
    weights = [
        p for p in folder.iterdir() if p.name.endswith((".safetensors", ".bin", ".index.json"))
    ]
    if not weights:
        raise UpstreamError(
            f"upstream {name!r}: {folder} holds config.json but no weights (*.safetensors or "
            f"pytorch_model.bin); copy the complete checkpoint folder"
        )
    return _shape_of(config, name)


def _shape_of(config: dict, name) -> tuple[int, int]:
    """(L, D) of a transformers config dict: hidden states are the layers plus the embedding."""
    if config.get("model_type") == "whisper":
        layers, hidden = config.get("encoder_layers"), config.get("d_model")
    else:
        layers, hidden = config.get("num_hidden_layers"), config.get("hidden_size")
    if not isinstance(layers, int) or not isinstance(hidden, int):
        raise UpstreamError(
            f"upstream {name!r}: its config.json gives no layer count or hidden size "
            f"(model_type {config.get('model_type')!r}); featcache reads wav2vec2, HuBERT, WavLM, "
            f"data2vec-audio and Whisper checkpoints"
        )
    return layers + 1, hidden
