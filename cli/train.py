"""`featcache train`: train a fusion interface and a task head from cached layers."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.cli.options import CACHE, choice, described, storage_option
from featcache.fusion.registry import ALIGN_DIMS, INTERFACES
from featcache.heads.registry import TASKS
from featcache.train.config import LOADERS, NORMALIZATIONS, POOLED, PRECISIONS, TrainConfig

DEFAULTS = TrainConfig()


@click.command("train")
@click.option("--cache", type=CACHE, help="Cache folder or URL (s3://bucket/prefix; from extract).")
@storage_option()
@click.option("--chunk-cache", type=click.Path(path_type=Path),
              help="URL cache: keep each chunk read in this local folder, so later epochs and "
                   "runs read it from local disk.")  # fmt: skip
@click.option("-u", "--upstream", "upstreams", multiple=True,
              help="Upstream as given to extract, or its store name; repeat to fuse several "
                   "(default: every upstream in the cache).")  # fmt: skip
@click.option("--task", type=choice(TASKS),
              help=described(TASKS, f"Head (default {DEFAULTS.task}):"))  # fmt: skip
@click.option("--label", help="Manifest field to predict (default speaker; text for ctc).")
@click.option("--interface",
              help=described(INTERFACES, f"Fusion interface (default {DEFAULTS.interface}):"))  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (rerun to resume).")
@click.option("--manifest", type=click.Path(path_type=Path),
              help="Labels/splits from this manifest instead of CACHE/manifest.jsonl (by id).")  # fmt: skip
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="TOML file of these options (keys as option names); options given here win.")  # fmt: skip
@click.option("--split-field", help="Field holding train/dev/test (default split).")
@click.option("--epochs", type=int, help="Most epochs (default 20).")
@click.option("--max-steps", type=int, help="Stop after this many optimizer steps.")
@click.option("--batch-frames", type=int, help="Most padded frames per batch (default 2000).")
@click.option("--lr", type=float, help="Learning rate of the head (default 1e-3).")
@click.option("--interface-lr", type=float, help="Learning rate of the interface (default --lr).")
@click.option("--grad-accum", type=int, help="Batches per optimizer step (default 1).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--device", help="auto (default), cpu, cuda, cuda:N.")
@click.option("--precision", type=choice(PRECISIONS),
              help=described(PRECISIONS, f"Precision (default {DEFAULTS.precision}):"))  # fmt: skip
@click.option("--num-workers", type=int, help="DataLoader worker processes (default 2).")
@click.option(
    "--patience", type=int, help="Stop after this many epochs without a better dev score."
)
@click.option("--save-every", type=int, help="Also write last.pt every N optimizer steps.")
@click.option("--align-dim", type=choice(ALIGN_DIMS),
              help=described(ALIGN_DIMS, f"Multi-model hidden-size alignment (default "
                                         f"{DEFAULTS.align_dim}):"))  # fmt: skip
@click.option("--normalize", type=choice(NORMALIZATIONS),
              help=described(NORMALIZATIONS, f"Inputs of the interface (default "
                                             f"{DEFAULTS.normalize}):"))  # fmt: skip
@click.option("--normalize-utterances", type=int,
              help="Training utterances sampled for the statistics (default 200).")  # fmt: skip
@click.option("--pooled", type=choice(POOLED),
              help=described(POOLED, f"Pooled shortcut (default {DEFAULTS.pooled}):"))  # fmt: skip
@click.option("--loader", type=choice(LOADERS),
              help=described(LOADERS, f"Reading frames (default {DEFAULTS.loader}):"))  # fmt: skip
@click.option("--cache-in-memory",
              help="auto (default): hold the train/dev frames in memory when they fit half the "
                   "available memory; off; or a budget in GB. Where frames come from, never "
                   "the batches.")  # fmt: skip
@click.option("--threads", type=int,
              help="Torch threads (default: all cores; on a busy machine 1 is often faster).")  # fmt: skip
@click.option("--no-progress", "no_progress", is_flag=True,
              help="Do not show the step progress bar.")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Delete an existing run folder first.")
def train(config_file, overwrite, no_progress, **options) -> None:
    """Train a fusion interface plus a task head on cached layers; write a run folder.

    Example: featcache train --cache CACHE -u hubert-base -u whisper-small --task classify
    --label speaker --interface hconv --out runs/hconv
    """
    from featcache.pipelines.train import train as run_train
    from featcache.store.location import parse_storage_options
    from featcache.train.config import resolve_config

    options["upstreams"] = list(options["upstreams"])
    options["progress"] = False if no_progress else None
    for key in ("cache", "out", "manifest", "chunk_cache"):
        if options[key] is not None:
            options[key] = str(options[key])
    options["storage_options"] = parse_storage_options(options["storage_options"]) or None
    config = resolve_config(options, config_file)
    run_train(config, log=click.echo, overwrite=overwrite)
