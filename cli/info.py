"""`featcache info`: what a cache folder holds."""

from __future__ import annotations

import click

from featcache.cli.options import CACHE, cache_location, storage_option


@click.command("info")
@click.argument("cache_arg", metavar="[CACHE]", required=False, type=CACHE)
@click.option("--cache", type=CACHE, help="Cache folder or URL (as in every command).")
@storage_option()
@click.option(
    "--errors",
    "show_errors",
    default=5,
    show_default=True,
    help="Failed utterances listed per store.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def info(cache_arg, cache, show_errors: int, as_json: bool, storage_options=()) -> None:
    """Show what cache --cache holds (a folder or a URL such as s3://bucket/cache), one store
    per upstream (`info CACHE` works too).

    Per store: utterances done and failed, layers, dims, frame rate, dtype, size on disk, the
    upstream's provenance and padding/window policy, and for int8 stores the bytes saved against
    float16.
    """
    from featcache.store.info import describe_cache, format_table

    if cache is None and cache_arg is None:
        raise click.UsageError("pass the cache folder: featcache info --cache CACHE")
    if cache is not None and cache_arg is not None and cache != cache_arg:
        raise click.UsageError(f"two cache folders given ({cache_arg} and --cache {cache})")
    cache = cache_location(cache or cache_arg, storage_options)
    rows = describe_cache(cache)
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_table(rows, show_errors=show_errors))
