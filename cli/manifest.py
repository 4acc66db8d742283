"""`featcache manifest validate|stats|import`."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("manifest")
def manifest() -> None:
    """Validate, summarise and import utterance manifests (JSONL)."""


@manifest.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--no-audio", is_flag=True, help="Check structure only; do not open audio files.")
def validate(path: Path, no_audio: bool) -> None:
    """Report every problem in manifest PATH with its line number; exit 1 if any."""
    from featcache.manifest import validate_manifest

    problems = validate_manifest(path, check_audio=not no_audio)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        lines = {p.line for p in problems if p.line}
        where = f"on {len(lines)} line(s) of {path}" if lines else f"in {path}"
        click.echo(f"{len(problems)} problem(s) {where}; fix them and rerun", err=True)
        raise click.exceptions.Exit(1)
    from featcache.manifest import Manifest

    click.echo(f"{path}: {len(Manifest.load(path))} utterances, no problems")


@manifest.command("stats")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--max-values",
    default=12,
    show_default=True,
    type=click.IntRange(min=1),
    help="Label values shown per field.",
)
def stats(path: Path, max_values: int) -> None:
    """Print utterances, hours, per-split counts and label distributions of PATH."""
    from featcache.manifest_stats import format_stats, manifest_stats

    click.echo(format_stats(manifest_stats(path), max_values=max_values))


def _attach_import() -> None:
    from featcache.cli.manifest_import import import_  # click only: cheap to import

    manifest.add_command(import_, "import")


_attach_import()
