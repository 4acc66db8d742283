"""`featcache demo`: the whole pipeline, offline, on the synthesized demo corpus."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--out",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder.",
)
@click.option(
    "-u",
    "--upstream",
    "upstreams",
    multiple=True,
    help="Use these upstreams instead of the untrained tiny models and fbank.",
)
@click.option("--utterances", "-n", type=int, help="Corpus size (default 240), as demo-data -n.")
def demo(out: Path, upstreams: tuple[str, ...], utterances: int | None) -> None:
    """Synthesize speech, extract every layer, train single and fused models, probe, compare, report.

    By default the upstreams are fbank and two tiny RANDOM-INITIALISED (untrained) models, so
    the demo runs offline in minutes; their accuracies show the machinery, not real models.
    Pass real upstreams with -u (registry names, hub ids or local folders).
    """  # fmt: skip
    from featcache.cli.run import _finish
    from featcache.pipelines.recipe import load_recipe, resolve_recipe
    from featcache.pipelines.run import run_recipe

    recipe = load_recipe(resolve_recipe("demo"), out=out, upstreams=list(upstreams) or None)
    if upstreams:
        recipe.threads = None  # real models use every core
    if utterances is not None:
        recipe.data.utterances = utterances
    if not upstreams:
        click.echo("upstreams: " + ", ".join(recipe.extract.upstreams)
                   + " (the random:* models are untrained, for an offline demo)")  # fmt: skip
    _finish(run_recipe(recipe, log=click.echo))
