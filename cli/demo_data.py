"""`featcache demo-data`: synthesize the labelled demo corpus."""

from __future__ import annotations

from pathlib import Path

import click

from featcache.cli.options import choice, described
from featcache.demo_data import ENGINES


@click.command("demo-data")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--utterances", "-n", default=240, show_default=True, help="Number of utterances.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same corpus.")
@click.option(
    "--engine",
    "engines",
    multiple=True,
    type=choice(ENGINES),
    help=described(ENGINES, "Speech engines to use (default: all; repeat to pick):"),
)
def demo_data(out: Path, utterances: int, seed: int, engines: tuple[str, ...]) -> None:
    """Synthesize a labelled corpus into OUT: wav/*.wav (16 kHz) and manifest.jsonl.

    Labels: speaker (one per voice), style (neutral/excited/calm prosody), language (en/es),
    gender, text; splits train/dev/test per speaker. Needs espeak-ng.
    """
    from tqdm import tqdm

    from featcache.demo_data import make_demo_corpus

    bars: list[tqdm] = []  # made on the first progress call, so option errors print alone

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc="synthesizing", unit="utt", leave=False))
        bars[0].update(done - bars[0].n)

    try:
        path = make_demo_corpus(out, utterances, seed, engines or tuple(ENGINES), progress)
    finally:
        for bar in bars:
            bar.close()
    click.echo(f"wrote {path}")
