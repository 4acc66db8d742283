"""Load transformers checkpoints completely, or fail.

transformers 5 loads mismatched weights silently: a missing weight is left random-initialised, an
unexpected one is dropped, with only a log line (``WhisperEncoder.from_pretrained`` on a full
Whisper checkpoint leaves *every* weight random). featcache asks for the loading report and turns
any missing, mismatched or unexpected weight of the model it keeps into an :class:`UpstreamError`.
Weights of task or pre-training heads that live outside the kept model (``lm_head``,
``quantizer``, ``project_q``, Whisper's ``decoder``...) are dropped on purpose and listed in the
provenance as ``dropped_keys``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from featcache.errors import UpstreamError


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' loading report and progress bars for the duration of a load."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_checked(model_cls, folder, *, keep_prefix: str = "", name: str = ""):
    """``model_cls.from_pretrained(folder)`` in float32 that insists every kept weight loads.

    Parameters
    ----------
    model_cls : type
        A transformers model class (``HubertModel``, ``WhisperModel``, ``WhisperEncoder``...).
    folder : str or Path
        Local checkpoint folder (config.json + weights).
    keep_prefix : str
        Only missing weights under this prefix count (``"encoder."`` when only Whisper's encoder
        is kept); empty: every weight of the model counts.
    name : str
        The upstream's name, for messages.

    Returns
    -------
    model, dropped : (torch.nn.Module, list of str)
        The model in eval mode, and the checkpoint keys of heads outside it that were dropped.

    Raises
    ------
    UpstreamError
        If a kept weight is missing or mismatched, or the checkpoint holds weights inside the model
        that the model does not have.
    """
    import torch

    try:
        with quiet_transformers():
            model, info = model_cls.from_pretrained(
                str(folder),
                dtype=torch.float32,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported below, as an UpstreamError
            )
    except (OSError, ValueError, RuntimeError) as exc:
        raise UpstreamError(
            f"cannot load upstream {name or folder!r} from {folder} as {model_cls.__name__}: "
            f"{(str(exc).splitlines() or [type(exc).__name__])[0]}; check the folder holds config.json "
            f"and model weights"
        ) from exc
    missing = sorted(k for k in info["missing_keys"] if k.startswith(keep_prefix))
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info["mismatched_keys"])
    prefix = f"{model.base_model_prefix}." if model.base_model_prefix else ""
    inside = {child for child, _ in model.named_children()}
    inside |= {n.split(".")[0] for n, _ in model.named_parameters(recurse=False)}
    stray, dropped = [], []
    for key in sorted(info["unexpected_keys"]):
        bare = key[len(prefix) :] if prefix and key.startswith(prefix) else key
        (stray if bare.split(".")[0] in inside else dropped).append(key)
    if missing or mismatched or stray:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("mismatched", mismatched),
            ("unexpected", stray),
        ):
            if keys:
                parts.append(
                    f"{len(keys)} {label} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
                )
        raise UpstreamError(
            f"upstream {name or folder!r}: the weights in {folder} do not fit "
            f"{model_cls.__name__}: {'; '.join(parts)}; the checkpoint is incomplete or of another "
            f"architecture, re-download it or pass the matching folder"
        )
    return model.eval(), dropped


def read_json(path):
    """A JSON file as a dict, or {} if it does not exist."""
    path = Path(path)
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def revision_of(folder) -> str | None:
    """The commit a checkpoint folder came from, where it can be known.

    A model-hub cache snapshot is named by its commit (``.../snapshots/<sha>``); a git clone has
    ``.git/HEAD``. Otherwise None.
    """
    folder = Path(folder).resolve()
    if folder.parent.name == "snapshots" and len(folder.name) == 40:
        return folder.name
    head = folder / ".git" / "HEAD"
    if head.is_file():
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_file = folder / ".git" / ref[5:]
            return ref_file.read_text().strip() if ref_file.is_file() else None
        return ref
    return None


def checkpoint_keys(folder) -> list[str]:
    """Names of the tensors in a folder's safetensors files (headers only, no tensor is read)."""
    from safetensors import safe_open

    keys = []
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            keys.extend(f.keys())
    if not keys:
        index = read_json(Path(folder) / "pytorch_model.bin.index.json")
        keys = list(index.get("weight_map", {}))
    return keys
