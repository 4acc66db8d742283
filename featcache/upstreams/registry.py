"""Short upstream names and what they point to.

``REGISTRY`` maps a short name to a model-hub id. :func:`resolve` classifies any name a user can
pass to ``-u``: a built-in (``fbank``), a random-initialised config (``random:...``), an existing
local folder, a registry name, or a hub id (``owner/name``).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from featcache.errors import UpstreamError

REGISTRY = {
    "hubert-base": "facebook/hubert-base-ls960",
    "hubert-large": "facebook/hubert-large-ll60k",
    "hubert-xlarge": "facebook/hubert-xlarge-ll60k",
    "wavlm-base": "microsoft/wavlm-base",
    "wavlm-base-plus": "microsoft/wavlm-base-plus",
    "wavlm-large": "microsoft/wavlm-large",
    "data2vec-base": "facebook/data2vec-audio-base",
    "data2vec-large": "facebook/data2vec-audio-large",
    "wav2vec2-base": "facebook/wav2vec2-base",
    "wav2vec2-large": "facebook/wav2vec2-large",
    "wav2vec2-large-lv60": "facebook/wav2vec2-large-lv60",
    "wav2vec2-xls-r-300m": "facebook/wav2vec2-xls-r-300m",
    "whisper-tiny": "openai/whisper-tiny",
    "whisper-tiny.en": "openai/whisper-tiny.en",
    "whisper-base": "openai/whisper-base",
    "whisper-base.en": "openai/whisper-base.en",
    "whisper-small": "openai/whisper-small",
    "whisper-small.en": "openai/whisper-small.en",
    "whisper-medium": "openai/whisper-medium",
    "whisper-medium.en": "openai/whisper-medium.en",
    "whisper-large": "openai/whisper-large",
    "whisper-large-v2": "openai/whisper-large-v2",
    "whisper-large-v3": "openai/whisper-large-v3",
    "whisper-large-v3-turbo": "openai/whisper-large-v3-turbo",
}

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
        return "hub", REGISTRY[text]
    if _HUB_ID.fullmatch(text) and not text.startswith((".", "/")):
        return "hub", text
    close = difflib.get_close_matches(text, list(REGISTRY) + ["fbank"], n=3)
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
