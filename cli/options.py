"""Click options shared by several commands, and choices read from featcache's registries."""

from __future__ import annotations

from pathlib import Path

import click

UPSTREAMS_HELP = "Upstream (as given to extract, or its store name); repeat; default all."
SPLIT_HELP = "Use only utterances of this split; repeat. Default all."


def cache_option():
    return click.option(
        "--cache", required=True, type=click.Path(path_type=Path), help="Cache folder."
    )


def upstreams_option(help: str = UPSTREAMS_HELP):
    return click.option("-u", "--upstream", "upstreams", multiple=True, help=help)


def split_option(help: str = SPLIT_HELP):
    return click.option("--split", multiple=True, help=help)


def manifest_option(what: str = "Labels"):
    return click.option(
        "--manifest",
        type=click.Path(path_type=Path),
        help=f"{what} from this manifest instead of the cache's copy (matched by id).",
    )


def choice(registry) -> click.Choice:
    """The names of a :class:`featcache.registry.Registry` as a click choice."""
    return click.Choice(registry.names())


def described(registry, what: str) -> str:
    """Help text: ``what`` followed by every name of ``registry`` with its description."""
    return f"{what} {registry.help_text()}."
