"""`featcache similarity`: linear CKA between every layer of every pair of upstreams."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.analysis.registry import LEVELS
from featcache.cli.options import (
    cache_option,
    choice,
    manifest_option,
    split_option,
    upstreams_option,
)


@click.command("similarity")
@cache_option()
@upstreams_option()
@click.option(
    "--level",
    type=choice(LEVELS),
    default=LEVELS.default,
    show_default=True,
    help="Compare utterance means, or frames aligned in time as training aligns them.",
)
@click.option(
    "--max-frames",
    default=50000,
    show_default=True,
    type=click.IntRange(min=0),
    help="--level frames: frames sampled (deterministically) per pair; 0 = all.",
)
@split_option()
@manifest_option("Splits")
@click.option("--seed", default=0, show_default=True, help="Seed of frame sampling.")
@click.option(
    "--max-memory",
    default=512,
    show_default=True,
    type=click.IntRange(min=1),
    help="MiB for CKA statistics; more memory means fewer passes over the frames.",
)
@click.option(
    "--self/--no-self",
    "include_self",
    default=True,
    show_default=True,
    help="Also compare each upstream with itself (layer-to-layer similarity inside a model).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder: similarity.npz, similarity.json, similarity.png.",
)
def similarity(
    cache, upstreams, level, max_frames, split, manifest, seed, max_memory, include_self, out
) -> None:
    """Linear CKA (computed in minibatches, memory independent of the number of frames) between
    every layer pair of every upstream pair in CACHE, over the utterances they share."""  # fmt: skip
    from featcache.analysis.text import format_similarity
    from featcache.pipelines.similarity import run_similarity

    result = run_similarity(
        cache, upstreams=upstreams, level=level, split=split, manifest=manifest,
        max_frames=max_frames or None, seed=seed, max_bytes=max_memory * 2**20, out=out,
        include_self=include_self, log=click.echo,
    )  # fmt: skip
    click.echo(format_similarity(result))
    click.echo(f"wrote {out}/similarity.npz, similarity.json, similarity.png")
