"""Click options shared by several commands, and choices read from featcache's registries."""

from __future__ import annotations

import functools
from pathlib import Path

import click

UPSTREAMS_HELP = "Upstream (as given to extract, or its store name); repeat; default all."
SPLIT_HELP = "Use only utterances of this split; repeat. Default all."


CACHE_HELP = "Cache folder, or a URL (s3://bucket/prefix, gs://, az://, memory://)."
STORAGE_OPTION_HELP = (
    "For a URL cache: a file-system option KEY=VALUE (e.g. endpoint_url=http://host:9000, "
    "profile=NAME); repeat. Credentials otherwise come from the environment and ~/.aws."
)


class CacheLocation(click.ParamType):
    """A cache folder (Path) or an fsspec URL (kept as a string)."""

    name = "FOLDER|URL"

    def convert(self, value, param, ctx):
        if not isinstance(value, str) or "://" in value:
            return value
        return Path(value)


CACHE = CacheLocation()


def storage_option():
    return click.option(
        "--storage-option",
        "storage_options",
        multiple=True,
        metavar="KEY=VALUE",
        help=STORAGE_OPTION_HELP,
    )


def cache_location(cache, storage_options=()):
    """``--cache`` and ``--storage-option`` values -> a Path or a RemoteDir for the pipelines."""
    if cache is None:
        return None
    from featcache.store.location import as_location, parse_storage_options

    return as_location(cache, parse_storage_options(storage_options))


def with_cache_location(f):
    """Decorate a command taking ``cache`` and ``storage_options``: it receives one location."""

    @functools.wraps(f)
    def command(*args, storage_options=(), **kwargs):
        kwargs["cache"] = cache_location(kwargs.get("cache"), storage_options)
        return f(*args, **kwargs)

    return command


def cache_option(required: bool = True, help: str = CACHE_HELP):
    """``--cache FOLDER|URL`` plus ``--storage-option``; the command gets a Path or RemoteDir."""

    def decorate(f):
        f = storage_option()(with_cache_location(f))
        return click.option("--cache", required=required, type=CACHE, help=help)(f)

    return decorate


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
