"""`featcache extract`: cache every layer of one or more upstreams over a manifest."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.cli.options import CACHE, choice, described, storage_option
from featcache.store import COMPRESSIONS, DTYPES, FORMATS
from featcache.upstreams.device import AUTOCASTS


@click.command("extract")
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option(
    "-u",
    "--upstream",
    "upstreams",
    multiple=True,
    required=True,
    help="Upstream: registry name, hub id, local folder, fbank or random:<spec>. Repeatable.",
)
@click.option(
    "--cache",
    required=True,
    type=CACHE,
    help="Cache folder or URL (s3://bucket/prefix, gs://, az://; Zarr only): one store per "
    "upstream, plus manifest.jsonl.",
)
@storage_option()
@click.option(
    "--format",
    "format_",
    type=choice(FORMATS),
    default=FORMATS.default,
    show_default=True,
    help=described(FORMATS, "Store format:"),
)
@click.option(
    "--dtype",
    type=choice(DTYPES),
    default=DTYPES.default,
    show_default=True,
    help=described(
        DTYPES, "Stored frame dtype (pooled means are always float32; readers get float32 back):"
    ),
)
@click.option(
    "--compression",
    type=choice(COMPRESSIONS),
    default=COMPRESSIONS.default,
    show_default=True,
    help=described(COMPRESSIONS, "Chunk codec:"),
)
@click.option("--layers", default=None, help="Layers to keep, e.g. 0,4,8-12 (default: all).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--autocast",
    type=choice(AUTOCASTS),
    default=None,
    help="Run forwards under autocast (GPU; faster, not exact; recorded in the store).",
)
@click.option(
    "--batch-seconds",
    default=30.0,
    show_default=True,
    help="Audio seconds per forward call (the upstream batches only where exact).",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Start a local dask cluster with N worker processes (one per GPU on GPUs).",
)
@click.option(
    "--scheduler",
    default=None,
    help="Join an existing dask cluster at ADDRESS (the cache and audio must be on storage every worker sees).",
)
@click.option(
    "--part-size",
    default=32,
    show_default=True,
    help="Utterances per part (the unit of resume and of work per worker).",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="Torch threads of every forward, in this process and each worker (default: this "
    "process's torch threads). One count everywhere keeps arrays byte-identical across worker "
    "counts; with --workers N on CPU, cores / N avoids oversubscription.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Rebuild the named stores (an interrupted build of the same manifest resumes).",
)
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
def extract(manifest, upstreams, cache, format_, dtype, compression, layers, device, autocast,
            batch_seconds, workers, scheduler, part_size, threads, overwrite,
            no_progress, storage_options) -> None:  # fmt: skip
    """Run each upstream once over MANIFEST and cache every hidden layer in --cache.

    Rerun the same command after a crash to resume; finished parts are kept. Utterances whose
    audio cannot be used are listed at the end; the exit code is 3 if any failed.
    """
    from featcache.pipelines import extract as pipeline
    from featcache.store.location import parse_storage_options

    config = pipeline.ExtractConfig(
        manifest=manifest, upstreams=list(upstreams), cache=cache, format=format_, dtype=dtype,
        compression=compression, layers=layers, device=device, autocast=autocast,
        batch_seconds=batch_seconds, workers=workers, scheduler=scheduler, overwrite=overwrite,
        part_size=part_size, threads=threads, progress=not no_progress,
        storage_options=parse_storage_options(storage_options),
    )  # fmt: skip
    result = pipeline.extract(config)
    for s in result.stores:
        rtf = f", RTF {s.wall_seconds / s.audio_seconds:.3f}" if s.audio_seconds else ""
        click.echo(
            f"{s.name}: {s.num_utterances} utterances cached, {s.num_failed} failed -> {s.path} "
            f"({s.parts_computed} parts computed, {s.parts_reused} reused, "
            f"{s.audio_seconds / 3600:.3f} h audio in {s.wall_seconds:.1f} s{rtf})"
        )
        for utt_id, reason in s.errors.items():
            click.echo(f"  failed {utt_id}: {reason}")
    if result.failed:
        click.echo(
            "some utterances failed (listed above; `featcache info` shows them too); fix or drop "
            "them and rerun with --overwrite, or train on the rest",
            err=True,
        )
        raise click.exceptions.Exit(3)
