"""The ``featcache`` command: a click group whose subcommands load only when run.

Each subcommand lives in its own module (``cli/<name>.py``) and is imported on first use, so
``featcache --help`` answers without importing torch, transformers or zarr.
"""

from __future__ import annotations

import importlib
import sys

import click

# command name -> "module:attribute" (all modules under featcache.cli)
COMMANDS: dict[str, str] = {
    "demo": "featcache.cli.demo:demo",
    "run": "featcache.cli.run:run",
    "demo-data": "featcache.cli.demo_data:demo_data",
    "manifest": "featcache.cli.manifest:manifest",
    "extract": "featcache.cli.extract:extract",
    "info": "featcache.cli.info:info",
    "verify": "featcache.cli.verify:verify",
    "train": "featcache.cli.train:train",
    "evaluate": "featcache.cli.evaluate:evaluate",
    "probe": "featcache.cli.probe:probe",
    "similarity": "featcache.cli.similarity:similarity",
    "select": "featcache.cli.select:select",
    "report": "featcache.cli.report:report",
}

# one-line help shown by `featcache --help` without importing the command's module
SHORT_HELP: dict[str, str] = {
    "demo": "Run the whole pipeline offline on a synthesized corpus (the main demo).",
    "run": "Run a declarative recipe (TOML) stage by stage, skipping what is done.",
    "demo-data": "Synthesize a labelled multi-speaker speech corpus with espeak-ng.",
    "manifest": "Validate, summarise and import manifests.",
    "extract": "Run upstreams once over a manifest and cache every layer.",
    "info": "Show what a cache folder holds: utterances, failures, layers, sizes, provenance.",
    "verify": "Check every store of a cache (checksums with --deep); --repair marks damage.",
    "train": "Train a fusion interface and task head from cached layers.",
    "evaluate": "Re-score a training run's best checkpoint on a split.",
    "probe": "Score how well each layer of each upstream predicts a label (linear probes).",
    "similarity": "Linear CKA between every layer pair of every upstream pair.",
    "select": "Rank upstream subsets for a task by probe strength and complementarity.",
    "report": "Write one self-contained HTML report: cache, probes, CKA, runs.",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)  # in pipeline order, not alphabetical

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        if ctx.resilient_parsing or _is_listing(ctx):
            # `featcache --help`: describe the command without importing it
            return click.Command(name, short_help=SHORT_HELP.get(name, ""))
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


def _is_listing(ctx: click.Context) -> bool:
    """True while click formats the group's own help page (the command list)."""
    return getattr(ctx, "_featcache_listing", False)


class _Group(LazyGroup):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx._featcache_listing = True  # type: ignore[attr-defined]
        try:
            super().format_commands(ctx, formatter)
        finally:
            ctx._featcache_listing = False  # type: ignore[attr-defined]


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="featcache", prog_name="featcache")
def cli() -> None:
    """featcache: cache every layer of speech foundation models once, then fuse and analyse.

    Typical flow: `featcache demo-data DIR`, `featcache extract DIR/manifest.jsonl -u fbank
    --cache CACHE`, `featcache train --cache CACHE ...`, `featcache probe --cache CACHE ...`.
    """


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning featcache errors into one-line messages."""
    from featcache.errors import FeatcacheError

    try:
        code = cli.main(args=argv, prog_name="featcache", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except FeatcacheError as e:
        click.echo(f"error: {_one_line(str(e))}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; run the same command again to resume", err=True)
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    main()
