"""`featcache info`: what a cache folder holds."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("info")
@click.argument("cache", type=click.Path(path_type=Path))
@click.option(
    "--errors",
    "show_errors",
    default=5,
    show_default=True,
    help="Failed utterances listed per store.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def info(cache: Path, show_errors: int, as_json: bool) -> None:
    """Show what cache folder CACHE holds, one store per upstream.

    Per store: utterances done and failed, layers, dims, frame rate, dtype, size on disk, the
    upstream's provenance and padding/window policy, and for int8 stores the bytes saved against
    float16.
    """
    from featcache.store.info import describe_cache, format_table

    rows = describe_cache(cache)
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_table(rows, show_errors=show_errors))
