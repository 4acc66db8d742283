"""Short upstream names and what they point to.

``REGISTRY`` maps a short name to a model-hub id (``REGISTRY["hubert-base"].value``) with a
one-line description. :func:`resolve` classifies any name a user can
pass to ``-u``: a built-in (``fbank``), a random-initialised config (``random:...``), an existing
local folder, a registry name, or a hub id (``owner/name``).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from featcache.errors import UpstreamError
from featcache.registry import Registry

# short names -> model-hub ids; the only place upstream short names are written
REGISTRY = Registry("upstream", "-u")
REGISTRY.register(
    "hubert-base", "HuBERT Base, LibriSpeech 960 h (13 layers, 768)", "facebook/hubert-base-ls960"
)
REGISTRY.register(
    "hubert-large",
    "HuBERT Large, Libri-Light 60k h (25 layers, 1024)",
    "facebook/hubert-large-ll60k",
)
REGISTRY.register(
    "hubert-xlarge",
    "HuBERT X-Large, Libri-Light 60k h (49 layers, 1280)",
    "facebook/hubert-xlarge-ll60k",
)
REGISTRY.register("wavlm-base", "WavLM Base (13 layers, 768)", "microsoft/wavlm-base")
REGISTRY.register("wavlm-base-plus", "WavLM Base+ (13 layers, 768)", "microsoft/wavlm-base-plus")
REGISTRY.register("wavlm-large", "WavLM Large (25 layers, 1024)", "microsoft/wavlm-large")
REGISTRY.register(
    "data2vec-base", "data2vec-audio Base (13 layers, 768)", "facebook/data2vec-audio-base"
)
REGISTRY.register(
    "data2vec-large", "data2vec-audio Large (25 layers, 1024)", "facebook/data2vec-audio-large"
)
REGISTRY.register("wav2vec2-base", "wav2vec 2.0 Base (13 layers, 768)", "facebook/wav2vec2-base")
REGISTRY.register(
    "wav2vec2-large", "wav2vec 2.0 Large, LibriSpeech (25 layers, 1024)", "facebook/wav2vec2-large"
)
REGISTRY.register(
    "wav2vec2-large-lv60",
    "wav2vec 2.0 Large, Libri-Light (25 layers, 1024)",
    "facebook/wav2vec2-large-lv60",
)
REGISTRY.register(
    "wav2vec2-xls-r-300m",
    "XLS-R 300M, 128 languages (25 layers, 1024)",
    "facebook/wav2vec2-xls-r-300m",
)
REGISTRY.register(
    "whisper-tiny", "Whisper tiny encoder, multilingual (5 layers, 384)", "openai/whisper-tiny"
)
REGISTRY.register(
    "whisper-tiny.en", "Whisper tiny.en encoder (5 layers, 384)", "openai/whisper-tiny.en"
)
REGISTRY.register(
    "whisper-base", "Whisper base encoder, multilingual (7 layers, 512)", "openai/whisper-base"
)
REGISTRY.register(
    "whisper-base.en", "Whisper base.en encoder (7 layers, 512)", "openai/whisper-base.en"
)
REGISTRY.register(
    "whisper-small", "Whisper small encoder, multilingual (13 layers, 768)", "openai/whisper-small"
)
REGISTRY.register(
    "whisper-small.en", "Whisper small.en encoder (13 layers, 768)", "openai/whisper-small.en"
)
REGISTRY.register(
    "whisper-medium",
    "Whisper medium encoder, multilingual (25 layers, 1024)",
    "openai/whisper-medium",
)
REGISTRY.register(
    "whisper-medium.en", "Whisper medium.en encoder (25 layers, 1024)", "openai/whisper-medium.en"
)
REGISTRY.register(
    "whisper-large", "Whisper large encoder (33 layers, 1280)", "openai/whisper-large"
)
REGISTRY.register(
    "whisper-large-v2", "Whisper large-v2 encoder (33 layers, 1280)", "openai/whisper-large-v2"
)
REGISTRY.register(
    "whisper-large-v3",
    "Whisper large-v3 encoder, 128 mel bins (33 layers, 1280)",
    "openai/whisper-large-v3",
)
REGISTRY.register(
    "whisper-large-v3-turbo",
    "Whisper large-v3-turbo encoder (33 layers, 1280)",
    "openai/whisper-large-v3-turbo",
)

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def resolve(name: str) -> tuple[str, str]:
    """Classify an upstream name.

    Returns
    -------
    kind, target : (str, str)
        ``("fbank", "fbank")``, ``("random", spec)``, ``("folder", absolute path)`` or
        ``("hub", hub id)``.

    Raises
    ------
    UpstreamError
        For a name that is none of these (the message suggests close registry names).
    """
    text = str(name).strip()
    if text == "fbank":
        return "fbank", "fbank"
    if text.startswith("random:"):
        return "random", text[len("random:") :]
    path = Path(text).expanduser()
    if path.is_dir():
        return "folder", str(path.resolve())
    if text in REGISTRY:
        return "hub", REGISTRY[text].value
    if _HUB_ID.fullmatch(text) and not text.startswith((".", "/")):
        return "hub", text
    close = difflib.get_close_matches(text, REGISTRY.names() + ["fbank"], n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    looks_like_path = "/" in text or text.startswith((".", "~"))
    where = f"no folder {text} exists; " if looks_like_path else ""
    raise UpstreamError(
        f"unknown upstream {text!r}: {where}{hint}use a registry name ({', '.join(sorted(REGISTRY)[:6])}, "
        f"... see featcache.upstreams.REGISTRY), a model-hub id (owner/name), a local checkpoint "
        f"folder, 'fbank' or 'random:tiny-hubert'"
    )


def upstream_slug(name: str) -> str:
    """A file-system-safe store name for an upstream name.

    ``random:tiny-hubert`` -> ``random-tiny-hubert``; ``facebook/hubert-base-ls960`` ->
    ``facebook--hubert-base-ls960``; a folder -> its last component (``/m/whisper-tiny.en`` ->
    ``whisper-tiny.en``). Registry names are already slugs.
    """
    text = str(name).strip()
    path = Path(text).expanduser()
    if text.startswith(("/", ".", "~")) or (path.is_dir() and "/" in text):
        text = path.resolve().name
    text = text.replace("/", "--").replace(":", "-")
    text = re.sub(r"[^\w.+-]", "_", text).strip("._")
    return text or "upstream"
