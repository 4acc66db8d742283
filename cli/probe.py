"""`featcache probe`: how well each layer of each upstream predicts a label."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.analysis.registry import LEVELS, PROBE_TASKS
from featcache.cli.options import (
    cache_option,
    choice,
    manifest_option,
    split_option,
    upstreams_option,
)


@click.command("probe")
@cache_option()
@upstreams_option()
@click.option("--label", required=True, help="Manifest field to predict (e.g. speaker).")
@click.option(
    "--task",
    type=choice(PROBE_TASKS),
    default=PROBE_TASKS.default,
    show_default=True,
    help="auto: regress for many-valued numeric labels.",
)
@click.option(
    "--level",
    type=choice(LEVELS),
    default=LEVELS.default,
    show_default=True,
    help="Probe utterance means (pooled/mean) or frames (utterance label per frame).",
)
@split_option()
@manifest_option()
@click.option("--cv", default=5, show_default=True, help="Cross-validation folds.")
@click.option(
    "--max-frames",
    default=20000,
    show_default=True,
    type=click.IntRange(min=0),
    help="--level frames: frames sampled (deterministically); 0 = all.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of folds and frame sampling.")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder: probe.csv, probe.json, probe.png.",
)
def probe(cache, upstreams, label, task, level, split, manifest, cv, max_frames, seed, out) -> None:
    """Cross-validated linear probe (standardise + logistic/ridge regression) of every layer of
    every upstream in CACHE; prints a table and the best layer per upstream."""  # fmt: skip
    from featcache.analysis.text import format_probe
    from featcache.pipelines.probe import run_probe

    summary = run_probe(
        cache, label, upstreams=upstreams, task=task, level=level, split=split,
        manifest=manifest, cv=cv, max_frames=max_frames or None, seed=seed, out=out,
    )  # fmt: skip
    click.echo(format_probe(summary))
    click.echo(f"wrote {out}/probe.csv, probe.json, probe.png")
