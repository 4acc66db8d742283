"""`featcache select`: rank subsets of upstreams for a task before training fusions."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.analysis.registry import PROBE_TASKS
from featcache.cli.options import (
    cache_option,
    choice,
    manifest_option,
    split_option,
    upstreams_option,
)
from featcache.train.config import DEFAULT_INTERFACE


@click.command("select")
@cache_option()
@upstreams_option("Candidate upstream; repeat; default every store in the cache.")
@click.option("--label", required=True, help="Manifest field of the task (e.g. speaker).")
@click.option(
    "--task",
    type=choice(PROBE_TASKS),
    default=PROBE_TASKS.default,
    show_default=True,
    help="Probe task; auto: regress for many-valued numeric labels.",
)
@click.option("--max-models", default=2, show_default=True, help="Largest subset size.")
@click.option(
    "--weight",
    default=None,
    type=float,
    help="Weight of complementarity (>= 0) in the score.  [default: 0.25]",
)
@split_option("Probe only utterances of this split; repeat.")
@manifest_option()
@click.option("--cv", default=5, show_default=True, help="Cross-validation folds of the probes.")
@click.option("--seed", default=0, show_default=True, help="Seed of the probes' folds.")
@click.option(
    "--validate",
    default=0,
    show_default=True,
    help="Train short fusions of the N best and N worst subsets and report the rank "
    "correlation of predicted and measured dev scores.",
)
@click.option(
    "--interface",
    default=DEFAULT_INTERFACE,
    show_default=True,
    help="--validate: fusion interface (the same default as train).",
)
@click.option("--epochs", default=3, show_default=True, help="--validate: epochs per run.")
@click.option("--max-steps", default=200, show_default=True, help="--validate: steps per run.")
@click.option("--device", default="auto", show_default=True, help="--validate: training device.")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder: selection.csv, selection.json (and validate/ runs).",
)
def select(
    cache,
    upstreams,
    label,
    task,
    max_models,
    weight,
    split,
    manifest,
    cv,
    seed,
    validate,
    interface,
    epochs,
    max_steps,
    device,
    out,
) -> None:
    """Rank upstream subsets of up to --max-models models for a task, before training fusions.

    \b
    score(S) = mean over S of each model's best-layer probe score
             + WEIGHT x mean over pairs of (1 - linear CKA between their best layers)

    A heuristic (documented in featcache.analysis.select): --validate N trains short fusions of
    the N best and N worst subsets and reports how well the score predicted their dev scores.
    """
    from featcache.analysis.text import format_select
    from featcache.pipelines.selection import run_select

    result = run_select(
        cache, label, upstreams=upstreams, task=task, max_models=max_models, weight=weight,
        split=split, manifest=manifest, cv=cv, seed=seed, validate=validate, interface=interface,
        train_options={"epochs": epochs, "max_steps": max_steps, "device": device},
        out=out, log=click.echo,
    )  # fmt: skip
    click.echo(format_select(result))
    click.echo(f"wrote {out}/selection.csv, selection.json")
