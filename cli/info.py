"""`featcache info`: what a cache folder holds."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.cli.options import CACHE, storage_option, with_cache_location


@click.command("info")
@click.argument("cache", type=CACHE)
@storage_option()
@click.option(
    "--errors",
    "show_errors",
    default=5,
    show_default=True,
    help="Failed utterances listed per store.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@with_cache_location
def info(cache: Path, show_errors: int, as_json: bool) -> None:
    """Show what cache CACHE (a folder or a URL such as s3://bucket/cache) holds, per upstream.

    Per store: utterances done and failed, layers, dims, frame rate, dtype, size on disk, and the
    upstream's provenance and padding/window policy.
    """
    from featcache.store.info import describe_cache, format_table

    rows = describe_cache(cache)
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_table(rows, show_errors=show_errors))
