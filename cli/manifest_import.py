"""`featcache manifest import KIND SRC OUT`: convert a corpus description into a manifest."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.cli.options import choice, described
from featcache.importers import IMPORTERS
from featcache.importers.folder import LABEL_SOURCES
from featcache.importers.mlsuperb import TRAIN_SETS
from featcache.manifest import SPLITS

HELP = f"""Convert SRC (a KIND corpus or manifest) into manifest OUT (.jsonl or .jsonl.gz).

KIND is one of: {IMPORTERS.help_text()}.

Options apply to the importers named in their help; data_manifests/README.md describes each
source layout. Then check the result with `featcache manifest validate OUT`.
"""


@click.command("import", help=HELP)
@click.argument("kind", type=choice(IMPORTERS))
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", help="Split of every utterance (kaldi, lhotse, csv, dir; dir: 'auto').")
@click.option(
    "--audio-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder that relative audio paths are relative to (kaldi, lhotse, csv).",
)
@click.option(
    "--delimiter",
    help="csv: column separator, one character or 'tab' (default: tab for .tsv, else comma).",
)
@click.option(
    "--supervisions",
    type=click.Path(dir_okay=False, path_type=Path),
    help="lhotse: the SupervisionSet, when not beside the recordings.",
)
@click.option(
    "--label-from",
    type=choice(LABEL_SOURCES),
    help=described(LABEL_SOURCES, "dir: take a label from"),
)
@click.option("--label-field", help="dir: name of that label field (default: label).")
@click.option(
    "--test-session",
    type=click.IntRange(1, 5),
    help="iemocap: session used as test (SUPERB fold; default 5).",
)
@click.option(
    "--dev-ratio", type=float, help="iemocap: share of training sessions held out as dev (0.2)."
)
@click.option("--seed", type=int, help="iemocap: seed of the dev draw (0).")
@click.option(
    "--all-emotions",
    is_flag=True,
    default=None,
    help="iemocap: keep every label instead of SUPERB's 4 classes.",
)
@click.option(
    "--subsets",
    help="librispeech: comma-separated subsets, e.g. train-clean-100,dev-clean,test-clean.",
)
@click.option(
    "--split-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="voxceleb1: iden_split.txt when it is not in SRC.",
)
@click.option("--language", help="mlsuperb: monolingual setting (eng1, jpn, ... or an ISO code).")
@click.option(
    "--config",
    "config",
    type=choice(TRAIN_SETS),
    help=described(TRAIN_SETS, f"mlsuperb: training-set size (default {TRAIN_SETS.default}):"),
)
@click.option(
    "--max-duration", type=float, help="mlsuperb: drop training utterances longer than this (s)."
)
@click.option("--absolute", is_flag=True, help="Write absolute audio paths.")
def import_(kind: str, src: Path, out: Path, absolute: bool, **options) -> None:
    """Convert SRC into manifest OUT (the help text is HELP)."""
    from featcache.importers import import_manifest

    manifest = import_manifest(kind, src, out, absolute=absolute, **options)
    splits: dict[str, int] = {}
    for utt in manifest:
        splits[utt.split or "no split"] = splits.get(utt.split or "no split", 0) + 1
    order = SPLITS.names()
    names = sorted(splits, key=lambda name: (order.index(name) if name in order else 3, name))
    detail = f" ({', '.join(f'{name} {splits[name]}' for name in names)})" if manifest else ""
    click.echo(f"wrote {len(manifest)} utterances to {out}{detail}")
