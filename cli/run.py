"""`featcache run RECIPE`: execute a declarative recipe stage by stage."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.cli.options import CACHE, cache_location, storage_option


@click.command("run")
@click.argument("recipe")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: the recipe's `out`).",
)
@click.option(
    "--source",
    type=click.Path(path_type=Path),
    help="Corpus folder or manifest, instead of the recipe's [data] source.",
)
@click.option(
    "-u",
    "--upstream",
    "upstreams",
    multiple=True,
    help="Replace the recipe's upstreams (repeat for several).",
)
@click.option("--cache", type=CACHE, help="Cache folder or URL (s3://...) instead of OUT/cache.")
@storage_option()
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the recipe, the data and the labels, show the plan, run nothing.",
)
def run(recipe: str, out, source, upstreams, cache, storage_options, dry_run: bool) -> None:
    """Run RECIPE (a TOML file, or the name of a recipe shipped in pipelines/recipes).

    Stages already done are skipped, so an interrupted run continues where it stopped.
    """  # fmt: skip
    from featcache.errors import ConfigError
    from featcache.pipelines.recipe import load_recipe, resolve_recipe
    from featcache.pipelines.run import plan, run_recipe
    from featcache.pipelines.run_check import check

    r = load_recipe(
        resolve_recipe(recipe), out=out, source=source, upstreams=list(upstreams) or None
    )
    r.cache = cache_location(cache, storage_options)
    if dry_run:
        click.echo(f"recipe {r.name}: {r.description}")
        problems = check(r, log=click.echo)
        for status in plan(r):
            click.echo(
                f"  {'done ' if status.done else 'to do'}  {status.stage:<10} {status.target}"
            )
        for problem in problems:
            click.echo(f"problem: {problem}")
        if problems:
            raise ConfigError(f"recipe {r.path} has {len(problems)} problem(s); see above")
        click.echo("recipe is valid")
        return
    _finish(run_recipe(r, log=click.echo))


def _finish(result) -> None:
    from featcache.analysis.text import format_results

    click.echo("")
    click.echo(format_results(result.runs))
    if result.report is not None:
        click.echo(f"\nreport: {result.report.resolve()}")
    if result.failed_utterances:
        click.echo(
            f"{result.failed_utterances} utterance(s) failed extraction; see `featcache info`",
            err=True,
        )
        raise click.exceptions.Exit(3)
