"""`featcache report`: one self-contained HTML page about a cache and its training runs."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.cli.options import cache_option, manifest_option, upstreams_option


@click.command("report")
@cache_option()
@click.option(
    "--runs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Training run folder(s) (`featcache train --out`); repeat or list several.",
)
@upstreams_option("Limit to these upstreams.")
@click.option(
    "--probe",
    "probe_dir",
    type=click.Path(path_type=Path),
    help="Output folder of `featcache probe` to show.",
)
@click.option(
    "--similarity",
    "similarity_dir",
    type=click.Path(path_type=Path),
    help="Output folder of `featcache similarity` (default: pooled CKA computed now).",
)
@click.option(
    "--select",
    "select_dir",
    type=click.Path(path_type=Path),
    help="Output folder of `featcache select` to show its ranking.",
)
@click.option("--label", help="Without --probe: probe this manifest field now.")
@manifest_option()
@click.option("--out", required=True, type=click.Path(path_type=Path), help="HTML file to write.")
@click.argument("more_runs", nargs=-1, type=click.Path(path_type=Path))
def report(
    cache, runs, upstreams, probe_dir, similarity_dir, select_dir, label, manifest, out, more_runs
) -> None:
    """Write one HTML file (images embedded) with the cache summary, probe curves, CKA heat maps,
    learned layer weights, each run's layer contribution (dev-score drop with one input layer
    zeroed), training curves and a results table.

    Extra arguments are more run folders: `--runs runs/*` works."""  # fmt: skip
    from featcache.pipelines.report import run_report

    path = run_report(
        cache, out, runs=[*runs, *more_runs], upstreams=upstreams, probe=probe_dir,
        similarity=similarity_dir, selection=select_dir, label=label, manifest=manifest, log=click.echo,
    )  # fmt: skip
    click.echo(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB); open it in a browser")
