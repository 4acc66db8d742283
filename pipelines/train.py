"""The training stage: cached layers of one or more upstreams -> fusion interface + task head.

``train(config)`` opens the caches, joins them with the manifest's labels and splits, trains (see
:mod:`featcache.train.trainer`), re-scores the best checkpoint on dev and test and writes the run
folder: ``config.json``, ``metrics.jsonl``, ``best.pt``, ``last.pt``, ``summary.json``.
``evaluate_run(run, split)`` (:mod:`featcache.pipelines.evaluate`) re-scores a finished run;
the datasets and model come from :mod:`featcache.pipelines.train_data`. By default the model
standardises its inputs with per-(upstream, layer, dim) statistics of the training split, held
in the checkpoint (``--normalize``; see :mod:`featcache.train.normalize`), recorded under
``normalization`` in summary.json.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from featcache.analysis.text import results_line
from featcache.atomic import read_json, write_atomic, write_json
from featcache.errors import ConfigError
from featcache.pipelines.evaluate import evaluate_run, load_run_for_scoring  # noqa: F401
from featcache.pipelines.train_data import (  # noqa: F401 (callers import them from here)
    check_interface,
    prepare,
    resolve_data,
    resolve_loader,
)
from featcache.train.config import TrainConfig

Log = Callable[[str], None]
DONE = "summary.json"  # written last: marks a run folder finished


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
        old.setdefault("loader", "utterances")  # runs from before --loader read per utterance
        if old["loader"] == "auto":  # resolved from the cache alone, as resolve_loader did now
            old["loader"] = new["loader"]
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
