"""What a training run trains on: the stores, the joined utterances, the task, the datasets,
the loader and the (untrained) model.

:func:`resolve_data` opens the caches and joins them with the manifest (every user error before
any work), :func:`resolve_loader` turns ``--loader auto`` into the loader this cache means,
:func:`prepare` builds the datasets (frames, or the pooled shortcut where
:func:`choose_data_path` finds it exact) and the model. ``train`` and ``evaluate`` share them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from featcache.errors import ConfigError
from featcache.train.config import TrainConfig

Log = Callable[[str], None]


def layer_selection(interface: str, readers: list) -> list[list[int] | None]:
    """For ``last``/``layer:K``, read only that model layer of each store (else None each)."""
    from featcache.fusion import selected_layers

    picked = selected_layers(interface, [r.layers for r in readers], [str(r.path) for r in readers])
    return picked if picked is not None else [None] * len(readers)


def resolve_data(config: TrainConfig, log: Log, task_state: dict | None = None) -> dict:
    """Readers, layers, the manifest, the joined utterances and the fitted task of a run.

    The interface is checked against the stores' shapes before the manifest is read.
    """
    from featcache.fusion.registry import check_fits
    from featcache.heads import build_task
    from featcache.manifest import Manifest
    from featcache.store import Cache
    from featcache.train.data import frame_bytes, join_caches

    cache = Cache.open(config.cache, config.storage_options or None)
    readers = list(cache.readers(config.upstreams, chunk_cache=config.chunk_cache).values())
    layers = layer_selection(config.interface, readers)
    shapes = [(len(sel) if sel else r.num_layers, r.hidden_size)
              for r, sel in zip(readers, layers, strict=True)]  # fmt: skip
    stored = [sel or r.layers for r, sel in zip(readers, layers, strict=True)]
    check_fits(config.interface, shapes)  # one-line errors before the data is read
    check_interface(config.interface, shapes, config.align_dim, stored)
    manifest = Manifest.load(config.manifest) if config.manifest else cache.manifest()
    joined = join_caches(readers, manifest, config.label, config.split_field)
    for line in joined.warnings():
        log(line)
    task = build_task(config.task, config.label)
    if task_state is None:
        train_labels = [joined.labels[u] for u in joined.ids["train"]]
        for line in task.label_warnings(train_labels):
            log(line)
        task.fit(train_labels)
    else:
        task.load_state(task_state)
    train_bytes = frame_bytes(readers, layers) * sum(joined.frames[u] for u in joined.ids["train"])
    return {"readers": readers, "joined": joined, "task": task, "layers": layers,
            "shapes": shapes, "stored": stored, "train_bytes": train_bytes}  # fmt: skip


def resolve_loader(config: TrainConfig, data: dict, out: Path | None) -> TrainConfig:
    """``config`` with ``--loader auto`` replaced by the loader it means for this cache.

    A run folder that already has an identity (or, from before identity.json, a config.json)
    keeps the loader recorded there (a resume trains on the batches it started with); otherwise :func:`featcache.train.loaders.choose_loader`
    decides from ``data["train_bytes"]``. The choice and why go to ``data["loader"]``.
    """
    from featcache.train.identity import read_identity
    from featcache.train.loaders import choose_loader

    previous = read_identity(out) if out is not None and out.is_dir() else None
    recorded = (previous or {}).get("options", {}).get("loader")
    if previous is None and out is not None and (out / "config.json").is_file():
        try:  # a run folder from before identity.json: its config.json says
            recorded = json.loads((out / "config.json").read_text()).get("loader")
        except (OSError, ValueError, AttributeError):
            recorded = None  # check_identity reports an unreadable config.json
    data["loader"] = choose_loader(config.loader, data["train_bytes"], recorded)
    return dataclasses.replace(config, loader=data["loader"]["name"])


def prepare(
    config: TrainConfig,
    log: Log,
    task_state: dict | None = None,
    fit_normalize: bool = True,
    data: dict | None = None,
) -> dict[str, Any]:
    """Readers, joined utterances, the fitted task, datasets and the (untrained) model.

    With ``config.normalize == "global"`` the model standardises its inputs with statistics of
    the training split (:mod:`featcache.train.normalize`); ``fit_normalize`` False leaves them
    to a checkpoint's ``load_state_dict`` (evaluate). ``data`` is :func:`resolve_data`'s result
    when the caller already has it.
    """
    from featcache.fusion import build_interface
    from featcache.train.checkpoint import seed_everything
    from featcache.train.data import CachedDataset
    from featcache.train.model import FusionModel
    from featcache.train.normalize import Standardize, estimate
    from featcache.train.pooled import PooledDataset

    data = data or resolve_data(config, log, task_state)
    readers, joined, task = data["readers"], data["joined"], data["task"]
    layers, shapes, stored = data["layers"], data["shapes"], data["stored"]
    data_path = choose_data_path(config, readers, joined)
    frame_sets = {}
    for split, ids in joined.ids.items():
        if ids:
            targets = [task.encode(joined.labels[u]) for u in ids]
            labels = [joined.labels[u] for u in ids]
            frame_sets[split] = CachedDataset(readers, ids, joined.frames, targets, labels, layers)
    datasets = dict(frame_sets)
    if data_path["source"] == "pooled":
        datasets = {
            split: PooledDataset(readers, d.ids, joined.frames, d.targets,
                                 [d.labels[u] for u in d.ids], layers)
            for split, d in frame_sets.items()
        }  # fmt: skip
    if "dev" not in datasets:
        raise ConfigError(
            f"no dev utterances ({config.split_field}=dev) with frames in every cache; "
            "early stopping and checkpoint selection need a dev split"
        )
    normalize, normalization = None, {"mode": config.normalize}
    if config.normalize == "global":
        normalize = Standardize(shapes)
        if fit_normalize:
            stats = estimate(frame_sets["train"], config.normalize_utterances)
            normalize.set_stats(stats)
            normalization.update(split="train", utterances=stats["utterances"],
                                 frames=stats["frames"])  # fmt: skip
            normalization["stats"] = dict(
                zip([r.name for r in readers], normalize.describe(), strict=True)
            )
    seed_everything(config.seed)
    interface = build_interface(config.interface, shapes, config.align_dim, stored)
    model = FusionModel(interface, task.build_head(interface.output_dim), normalize)
    return {
        "readers": readers,
        "joined": joined,
        "task": task,
        "datasets": datasets,
        "model": model,
        "shapes": shapes,
        "layers": {r.name: sel or r.layers for r, sel in zip(readers, layers, strict=True)},
        "normalization": normalization,
        "data_path": data_path,
    }


def choose_data_path(config: TrainConfig, readers: list, joined) -> dict[str, Any]:
    """``{"source": "pooled"|"frames", "reason": ...}``: pooled means where exact and allowed."""
    from featcache.train.pooled import pooled_exact

    if config.pooled == "off":
        return {"source": "frames", "reason": "--pooled off"}
    ids = [u for split_ids in joined.ids.values() for u in split_ids]
    why_not = pooled_exact(config.interface, config.task, readers, ids)
    if why_not is not None:
        return {"source": "frames", "reason": why_not}
    return {"source": "pooled",
            "reason": f"{config.interface} + {config.task} are linear up to mean pooling"}  # fmt: skip


def check_interface(
    name: str, shapes: list[tuple[int, int]], align_dim: str, layers: list[list[int]] | None = None
) -> None:
    """Build the interface on the meta device: a name that does not fit the stores' shapes
    (``layer:20`` of a 13-layer model, ``group-ws:8`` of 3 layers) fails before any work.

    ``layers``: the model layer indices each input holds (see ``build_interface``)."""
    import torch

    from featcache.fusion import build_interface

    try:
        with torch.device("meta"):
            build_interface(name, shapes, align_dim, layers)
    except (ValueError, RuntimeError, KeyError, IndexError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(
            f"interface {name!r} does not fit the stores' (layers, hidden size) {shapes}: {exc}"
        ) from exc
