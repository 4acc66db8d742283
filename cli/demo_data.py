"""`featcache demo-data`: synthesize the labelled demo corpus."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo-data")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--utterances", "-n", default=240, show_default=True, help="Number of utterances.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same corpus.")
@click.option(
    "--engine",
    "engines",
    multiple=True,
    type=click.Choice(["espeak", "flite"]),
    help="Speech engines to use (default: espeak-ng, plus flite when installed).",
)
def demo_data(out: Path, utterances: int, seed: int, engines: tuple[str, ...]) -> None:
    """Synthesize a labelled corpus into OUT: wav/*.wav (16 kHz) and manifest.jsonl.

    Labels: speaker (one per voice), style (neutral/excited/calm prosody), language (en/es),
    gender, text; splits train/dev/test per speaker. Needs espeak-ng.
    """
    from tqdm import tqdm

    from featcache.demo_data import make_demo_corpus

    bar = tqdm(total=utterances, desc="synthesizing", unit="utt", leave=False)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        path = make_demo_corpus(out, utterances, seed, engines or ("espeak", "flite"), progress)
    finally:
        bar.close()
    click.echo(f"wrote {path}")
