"""`featcache info`: what a cache folder holds."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("info")
@click.argument("cache_arg", metavar="[CACHE]", required=False, type=click.Path(path_type=Path))
@click.option(
    "--cache", type=click.Path(path_type=Path), help="Cache folder (as in every command)."
)
@click.option(
    "--errors",
    "show_errors",
    default=5,
    show_default=True,
    help="Failed utterances listed per store.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def info(cache_arg: Path | None, cache: Path | None, show_errors: int, as_json: bool) -> None:
    """Show what cache folder --cache holds, one store per upstream (`info CACHE` works too).

    Per store: utterances done and failed, layers, dims, frame rate, dtype, size on disk, the
    upstream's provenance and padding/window policy, and for int8 stores the bytes saved against
    float16.
    """
    from featcache.store.info import describe_cache, format_table

    if cache is None and cache_arg is None:
        raise click.UsageError("pass the cache folder: featcache info --cache CACHE")
    if cache is not None and cache_arg is not None and cache != cache_arg:
        raise click.UsageError(f"two cache folders given ({cache_arg} and --cache {cache})")
    cache = cache or cache_arg
    rows = describe_cache(cache)
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_table(rows, show_errors=show_errors))
