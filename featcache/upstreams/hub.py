"""Fetch a model-hub checkpoint into the local cache, failing fast when the hub is unreachable.

Everything is loaded from a local folder in the end; this module only turns a hub id into one.
With ``HF_HUB_OFFLINE=1`` only the local hub cache is used. Otherwise a TCP connection to the hub
is tried with a short timeout first, so an unreachable hub costs seconds, not minutes of retries.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlsplit

from featcache.errors import UpstreamError

CONNECT_TIMEOUT_S = 3.0
WEIGHT_PATTERNS = [
    "config.json",
    "preprocessor_config.json",
    "*.safetensors",
    "*.safetensors.index.json",
]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


def _how_to_use_a_folder(repo_id):
    return (
        f"download it where the hub is reachable (`hf download {repo_id} --local-dir DIR`), copy "
        f"DIR here and pass the folder instead (-u DIR); no local folder {repo_id} exists"
    )


def hub_reachable(endpoint: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """True if a TCP connection to the endpoint's host opens within ``timeout`` seconds.

    The name lookup runs in a daemon thread too, since ``getaddrinfo`` ignores socket timeouts
    and can hang for a long time on a machine without DNS.
    """
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    result = []

    def connect():
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def fetch(repo_id: str, revision: str | None = None, cache_dir=None) -> str:
    """Return a local folder holding ``repo_id``'s config and weights.

    Parameters
    ----------
    repo_id : str
        Model-hub id, e.g. ``facebook/hubert-base-ls960``.
    revision : str, optional
        Branch, tag or commit.
    cache_dir : path, optional
        Hub cache folder (default: the hub library's).

    Raises
    ------
    UpstreamError
        If the checkpoint is not cached and the hub is offline or unreachable, or does not have it.
    """
    from huggingface_hub import snapshot_download

    def download(local_only, patterns):
        return snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=patterns,
            local_files_only=local_only,
        )

    try:
        folder = download(True, WEIGHT_PATTERNS)
        if any(name.endswith(".safetensors") for name in os.listdir(folder)):
            return folder
    except Exception:  # noqa: BLE001 - any failure here only means "not cached"
        pass
    if _offline():
        raise UpstreamError(
            f"upstream {repo_id!r} is not in the local model-hub cache and HF_HUB_OFFLINE=1; "
            + _how_to_use_a_folder(repo_id)
        )
    endpoint = _endpoint()
    if not hub_reachable(endpoint):
        raise UpstreamError(
            f"cannot reach the model hub at {endpoint} (no connection within "
            f"{CONNECT_TIMEOUT_S:g} s) to fetch {repo_id!r}; " + _how_to_use_a_folder(repo_id)
        )
    try:
        folder = download(False, WEIGHT_PATTERNS)
        if not any(name.endswith(".safetensors") for name in os.listdir(folder)):
            folder = download(
                False, ["config.json", "preprocessor_config.json", "*.bin", "*.bin.index.json"]
            )
    except Exception as exc:  # noqa: BLE001 - the hub library raises many types
        raise UpstreamError(
            f"cannot fetch upstream {repo_id!r} from {endpoint}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}; check the id, or "
            + _how_to_use_a_folder(repo_id)
        ) from exc
    return folder
