"""What each input layer contributes to a trained run: the dev-score drop when it is ablated.

For every upstream ``i`` and every layer ``l`` the run was trained on, the run's best checkpoint
re-scores the dev split with that one layer replaced by zeros at the interface's input, that is
after the run's input standardisation (``--normalize global``: zero is the training mean of that
layer, so the ablation removes the layer's information without feeding it values it never saw;
with ``--normalize none`` it is a plain zero). The contribution of the layer is how much worse the
main metric gets (accuracy points lost, WER points gained): a measure of what the trained model
uses, whatever the interface (``ws``, ``hconv``, ``chconv``, ...), unlike the interface's weights,
which also absorb each layer's scale and, for HConv, how often the kernel taps cover a layer.

The result is cached in ``RUN/layer_contribution_<split>.json`` next to ``best.pt``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from featcache.atomic import write_json


def layer_contribution(run, split: str = "dev", log=print) -> dict[str, Any]:
    """Dev-score drop of ``run``'s best checkpoint when each input layer is ablated.

    Parameters
    ----------
    run : path
        A finished training run folder (``best.pt``, ``config.json``).
    split : str
        The split to score (dev by default: the test split stays untouched).
    log : callable
        Where the data warnings of re-opening the caches go.

    Returns
    -------
    dict
        ``split``, ``metric``, ``higher_is_better``, ``baseline`` (the intact score) and
        ``layers``: upstream -> list of ``{"layer", "score", "drop"}`` (``drop`` > 0: the run
        is worse without that layer).
    """
    import torch

    from featcache.pipelines.train import load_run_for_scoring

    run = Path(run)
    cached = run / f"layer_contribution_{split}.json"
    if cached.exists() and cached.stat().st_mtime >= (run / "best.pt").stat().st_mtime:
        return json.loads(cached.read_text())
    trainer, parts = load_run_for_scoring(run, split, log)
    task, model = parts["task"], parts["model"]
    metric = task.main_metric
    sign = 1.0 if task.higher_is_better else -1.0
    baseline = trainer.evaluate(split)[metric]
    out: dict[str, Any] = {"split": split, "metric": metric, "baseline": baseline,
                           "higher_is_better": task.higher_is_better, "layers": {}}  # fmt: skip
    for i, reader in enumerate(parts["readers"]):
        rows = []
        for j, layer in enumerate(parts["layers"][reader.name]):

            def ablate(module, args, i=i, j=j):
                features = list(args[0])  # list of (L_k, B, T, D_k)
                features[i] = features[i].clone()
                features[i][j] = 0.0
                return (features, *args[1:])

            handle = model.interface.register_forward_pre_hook(ablate)
            try:
                with torch.no_grad():
                    score = trainer.evaluate(split)[metric]
            finally:
                handle.remove()
            rows.append({"layer": int(layer), "score": score,
                         "drop": sign * (baseline - score)})  # fmt: skip
        out["layers"][reader.name] = rows
    write_json(cached, out, indent=2)
    return out
