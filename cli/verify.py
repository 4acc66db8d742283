"""`featcache verify`: check a cache folder's stores; `--repair` marks damaged parts for rebuild."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("verify")
@click.argument("cache", type=click.Path(path_type=Path))
@click.option("--deep", is_flag=True,
              help="Also read every chunk through its checksum (reads the whole cache).")  # fmt: skip
@click.option("--repair", is_flag=True,
              help="Mark damaged parts incomplete so the next `featcache extract` recomputes "
                   "exactly them.")  # fmt: skip
def verify(cache: Path, deep: bool, repair: bool) -> None:
    """Check every store in CACHE: attrs, index, parts and (with --deep) every chunk.

    Exits 0 when nothing is damaged (or all damage was marked for repair), 2 otherwise.
    """
    from featcache.store import Cache
    from featcache.store.verify import repair as repair_store
    from featcache.store.verify import verify_cache

    checks = verify_cache(cache, deep=deep)
    damaged = 0
    for check in checks:
        if check.ok:
            what = f"{check.parts} parts" + (f", {check.chunks} chunks read" if deep else "")
            state = "" if check.complete else " (incomplete: rerun extract to finish it)"
            click.echo(f"{check.path}: ok ({what}){state}")
            continue
        for _, message in check.problems:
            click.echo(f"{check.path}: DAMAGED {message}")
        if repair:
            with Cache(cache).lock("featcache verify --repair"):  # not while an extract writes
                parts = repair_store(check, _manifest_ids(Path(cache)))
            click.echo(f"{check.path}: marked for rebuild (parts {parts or 'none'}, index); "
                       "run the same `featcache extract` command to recompute them")  # fmt: skip
        else:
            damaged += 1
    if damaged:
        click.echo(f"{damaged} damaged store(s); `featcache verify {cache} --repair` marks them "
                   "for the next extract", err=True)  # fmt: skip
        sys.exit(2)


def _manifest_ids(cache: Path) -> list[str]:
    from featcache.manifest import Manifest

    file = cache / "manifest.jsonl"
    return Manifest.load(file).ids() if file.exists() else []
