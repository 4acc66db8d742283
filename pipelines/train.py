"""The training stage: cached layers of one or more upstreams -> fusion interface + task head.

``train(config)`` opens the caches, joins them with the manifest's labels and splits, trains (see
:mod:`featcache.train.trainer`), re-scores the best checkpoint on dev and test and writes the run
folder: ``config.json``, ``metrics.jsonl``, ``best.pt``, ``last.pt``, ``summary.json``.
``evaluate_run(run, split)`` re-scores a finished run. By default the model standardises its
inputs with per-(upstream, layer, dim) statistics of the training split, held in the checkpoint
(``--normalize``; see :mod:`featcache.train.normalize`), recorded under ``normalization`` in
summary.json.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from featcache.analysis.text import results_line
from featcache.atomic import read_json, write_atomic, write_json
from featcache.errors import ConfigError
from featcache.train.config import TrainConfig

Log = Callable[[str], None]
DONE = "summary.json"  # written last: marks a run folder finished


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

    A run folder that already has an identity keeps the loader recorded there (a resume trains
    on the batches it started with); otherwise :func:`featcache.train.loaders.choose_loader`
    decides from ``data["train_bytes"]``. The choice and why go to ``data["loader"]``.
    """
    from featcache.train.identity import read_identity
    from featcache.train.loaders import choose_loader

    previous = read_identity(out) if out is not None and out.is_dir() else None
    recorded = (previous or {}).get("options", {}).get("loader")
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


def check_run_folder(out: Path, config: TrainConfig, overwrite: bool) -> None:
    """Refuse an ``--out`` that is a file, and an ``--overwrite`` of a folder that is not a run.

    Reads only: ``--overwrite`` deletes the folder later, once every input has been checked.
    """
    from featcache.train.identity import is_run_folder

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; pass a folder for the run (created if absent)")
    if not (overwrite and out.exists()) or is_run_folder(out) or not any(out.iterdir()):
        return
    raise ConfigError(
        f"{out}: not a featcache training run folder (no config.json of a run); --overwrite "
        f"deletes only run folders: choose another --out or remove it yourself"
    )


def check_identity(out: Path, config: TrainConfig, identity: dict) -> bool:
    """Refuse a run folder that holds another run; True when it holds this run, finished.

    The comparison uses content (:mod:`featcache.train.identity`), not path strings.
    """
    from featcache.train.identity import (
        EXECUTION_ONLY,
        PATH_OPTIONS,
        identity_change,
        read_identity,
    )

    if not (out / "config.json").exists():
        return False
    previous = read_identity(out)
    if previous is not None:
        changed = identity_change(previous, identity)
    else:  # a run folder from before identity.json: compare the options that are not paths
        old, new = json.loads((out / "config.json").read_text()), config.to_dict()
        names = sorted(k for k in new if old.get(k) != new[k]
                       and k not in (*EXECUTION_ONLY, *PATH_OPTIONS))  # fmt: skip
        changed = f"option(s) {', '.join(names)}" if names else None
    if changed:
        raise ConfigError(
            f"{out} holds a run with a different config ({changed} changed); use another "
            "--out, or --overwrite to start over"
        )
    return (out / DONE).exists()


def train(config: TrainConfig, log: Log = print, overwrite: bool = False) -> dict[str, Any]:
    """Train (or resume, or return the finished run in ``config.out``); returns summary.json."""
    import torch

    from featcache.train import checkpoint
    from featcache.train.distributed import barrier, setup, teardown
    from featcache.train.identity import FILE, run_identity
    from featcache.train.loaders import hold_in_memory
    from featcache.train.trainer import Trainer

    if not config.out:
        raise ConfigError("no run folder given; pass --out RUN")
    dist = setup(config.device if config.device != "auto" else
                 ("cuda" if torch.cuda.is_available() else "cpu"))  # fmt: skip
    out = Path(config.out)
    main_log = log if dist.is_main else (lambda line: None)
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        check_run_folder(out, config, overwrite)
        data = resolve_data(config, main_log)  # user errors surface before the run folder exists
        config = resolve_loader(config, data, None if overwrite else out)
        identity = run_identity(config, data["readers"], data["joined"], data["task"])
        if not overwrite and check_identity(out, config, identity):
            summary = read_json(out / DONE, "use another --out, or --overwrite to start over")
            main_log(f"{out} is already complete")
            main_log(results_line(summary))
            return summary
        started = time.perf_counter()
        parts = prepare(config, main_log, data=data)
        parts["loader"] = data["loader"]
        main_log(f"training on {parts['data_path']['source']} ({parts['data_path']['reason']}), "
                 f"{config.loader} loader ({data['loader']['reason']})")  # fmt: skip
        parts["memory"] = hold_in_memory(parts["datasets"], config.cache_in_memory)
        if parts["memory"]["held"]:
            main_log(f"holding {'+'.join(parts['memory']['held'])} frames in memory "
                     f"({parts['memory']['gb']} GB)")  # fmt: skip
        if overwrite and dist.is_main and out.exists():
            shutil.rmtree(out)  # a run folder (checked above), now that every input is valid
        barrier(dist)
        out.mkdir(parents=True, exist_ok=True)
        saved = out / "config.json"
        text = json.dumps(config.to_dict(), indent=2) + "\n"
        if dist.is_main:  # paths as given now: evaluate finds a moved cache from here
            if not (saved.exists() and saved.read_text() == text):
                write_atomic(saved, text)  # a resumed run leaves an equal config.json alone
            write_json(out / FILE, identity, indent=2, default=str)
        extra = {"shapes": parts["shapes"], "upstreams": [r.name for r in parts["readers"]]}
        trainer = Trainer(config, parts["model"], parts["task"], parts["datasets"], out, dist,
                          main_log, extra)  # fmt: skip
        state = trainer.fit()
        best = checkpoint.load(out / "best.pt")
        parts["model"].load_state_dict(best["model"])
        metrics = {split: trainer.evaluate(split) for split in ("dev", "test")
                   if split in parts["datasets"]}  # fmt: skip
        summary = make_summary(config, parts, metrics, best, state, trainer, dist.world_size)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        if dist.is_main:
            write_json(out / DONE, summary, indent=2)  # last: marks the run finished
        main_log(results_line(summary))
        return summary
    finally:
        torch.set_num_threads(threads)
        teardown(dist)


def make_summary(config, parts, metrics, best, state, trainer, world_size) -> dict[str, Any]:
    readers = parts["readers"]
    model = parts["model"]
    summary: dict[str, Any] = {
        "upstreams": [r.name for r in readers],
        "upstream_sources": {r.name: r.attrs.get("upstream", {}).get("name") for r in readers},
        "layers": parts["layers"],
        "interface": config.interface,
        "task": config.task,
        "label": config.label,
        "metrics": metrics,
        "main_metric": parts["task"].main_metric,
        "params": model.param_counts(),
        "best": {"epoch": best["epoch"], "step": best["step"]},
        "epochs": state["epoch"],
        "steps": state["step"],
        "data": parts["joined"].report(),
        "device": str(trainer.device),
        "precision": trainer.precision,
        "world_size": world_size,
        "normalization": parts["normalization"],
        "data_path": parts["data_path"],
        "loader": config.loader if world_size == 1 else "utterances",
        "loader_reason": parts["loader"]["reason"] if world_size == 1 else "DDP",
        "memory": parts["memory"],
    }
    weights = model.interface.layer_weights()
    if weights is not None:
        summary["layer_weights"] = {
            r.name: [round(float(w), 6) for w in ws] for r, ws in zip(readers, weights, strict=True)
        }
    return summary


def evaluate_run(
    run: str | Path,
    split: str = "test",
    log: Log = print,
    device: str | None = None,
    shown: int = 3,
) -> dict[str, float]:
    """Re-score the best checkpoint of ``run`` on ``split``.

    Writes ``RUN/eval_<split>.json`` (the metrics) and ``RUN/predictions_<split>.jsonl`` (id,
    reference and hypothesis of every utterance) and logs the first ``shown`` predictions.
    """
    trainer, _ = load_run_for_scoring(run, split, log, device)
    ids, refs, preds = trainer.predict(split)
    metrics = trainer.task.score(refs, preds)
    write_json(Path(run) / f"eval_{split}.json", metrics, indent=2)
    write_predictions(Path(run) / f"predictions_{split}.jsonl", ids, refs, preds, trainer.task)
    for utt, ref, hyp in list(zip(ids, refs, preds, strict=True))[:shown]:
        log(f"  {utt}: ref {_clip(ref)!r} hyp {_clip(hyp)!r}")
    log(f"{split}: " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    log(f"predictions: {Path(run) / f'predictions_{split}.jsonl'}")
    return metrics


def write_predictions(path: Path, ids, refs, preds, task) -> None:
    """One JSON line per utterance: ``id``, ``ref`` and ``hyp`` (as the task scores them)."""
    from featcache.heads.ctc import normalise_text

    lines = []
    for utt, ref, hyp in zip(ids, refs, preds, strict=True):
        ref = normalise_text(ref) if task.name == "ctc" else ref
        lines.append(json.dumps({"id": utt, "ref": ref, "hyp": hyp}) + "\n")
    write_atomic(path, "".join(lines))


def _clip(text, width: int = 70) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def load_run_for_scoring(run, split: str, log: Log = print, device: str | None = None):
    """A run's best checkpoint, loaded with its caches, ready to score ``split``.

    Returns
    -------
    trainer, parts : (Trainer, dict)
        The trainer (``evaluate``/``predict``) and :func:`prepare`'s parts.
    """
    from featcache.train import checkpoint
    from featcache.train.trainer import Trainer

    run = Path(run)
    if not (run / "best.pt").exists() or not (run / "config.json").exists():
        raise ConfigError(f"{run}: not a training run folder (no best.pt/config.json); "
                          "run `featcache train --out RUN` first")  # fmt: skip
    values = read_json(run / "config.json", "retrain the run with `featcache train`")
    values.setdefault("normalize", "none")  # runs from before input normalisation existed
    config = TrainConfig.from_dict(values)
    if device is not None:
        config.device = device
    best = checkpoint.load(run / "best.pt")
    data = resolve_data(config, log, task_state=best["task"])
    config = resolve_loader(config, data, run)  # config.json holds the resolved name
    parts = prepare(config, log, task_state=best["task"], fit_normalize=False, data=data)
    if split not in parts["datasets"]:
        raise ConfigError(f"{run}: no utterances with {config.split_field}={split} in the cache")
    parts["model"].load_state_dict(best["model"])
    trainer = Trainer(config, parts["model"], parts["task"], parts["datasets"], run, log=log)
    return trainer, parts
