"""Re-scoring a finished training run: ``featcache evaluate`` and the analyses that load a run.

``evaluate_run(run, split)`` writes ``RUN/eval_<split>.json`` and ``RUN/predictions_<split>.jsonl``;
:func:`load_run_for_scoring` gives the trainer and parts of a run's best checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from featcache.atomic import read_json, write_atomic, write_json
from featcache.errors import ConfigError
from featcache.pipelines.train_data import prepare, resolve_data, resolve_loader
from featcache.train.config import TrainConfig

Log = Callable[[str], None]


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
