"""`featcache evaluate`: re-score training runs' best checkpoints."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.cli.options import choice
from featcache.manifest import SPLITS


@click.command("evaluate")
@click.option("--runs", "run_options", multiple=True, type=click.Path(path_type=Path),
              help="Training run folder(s), as report --runs; repeat or list several.")  # fmt: skip
@click.argument("more_runs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--split", type=choice(SPLITS), default=SPLITS.default,
              show_default=True, help="Which split to score.")  # fmt: skip
@click.option("--device", help="Override the runs' device (auto, cpu, cuda, cuda:N).")
def evaluate(run_options, more_runs, split: str, device: str | None) -> None:
    """Score each run's best.pt on a split of its cache; writes RUN/eval_<split>.json and
    RUN/predictions_<split>.jsonl (id, reference, hypothesis) and prints a few predictions.

    Runs are given with --runs (as in report) or as arguments: `evaluate --runs runs/*`.
    With several runs, a results table follows (one row per run).
    """  # fmt: skip

    runs = [*run_options, *more_runs]
    if not runs:
        raise click.UsageError("pass the run folders: featcache evaluate --runs RUN [RUN ...]")
    from featcache.analysis.text import results_table
    from featcache.atomic import read_json
    from featcache.pipelines.train import evaluate_run

    summaries = []
    for run in runs:
        if len(runs) > 1:
            click.echo(f"{run}:")
        metrics = evaluate_run(run, split, log=click.echo, device=device)
        summary_file = run / "summary.json"
        summary = read_json(summary_file) if summary_file.exists() else None
        if summary is not None:
            summaries.append({**summary, "metrics": {split: metrics}})
    if len(summaries) > 1:
        click.echo(results_table(summaries, split))
