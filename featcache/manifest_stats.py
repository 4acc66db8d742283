"""Summary statistics of a manifest: size, hours, splits and label distributions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from featcache.manifest import Manifest

# fields holding free text rather than class labels: summarised, not tabulated
TEXT_FIELDS = ("text", "transcript", "words")
# integer fields with at most this many values are class ids (tabulated), others are numeric
MAX_NUMERIC_CLASSES = 20
MAX_VALUE_CHARS = 40  # longer label values are cut in the table


@dataclass
class ManifestStats:
    path: str
    utterances: int
    seconds: float
    unknown_durations: int
    splits: dict[str, int]
    labels: dict[str, Counter] = field(default_factory=dict)
    per_split: dict[str, dict[str, Counter]] = field(default_factory=dict)
    text: dict[str, dict[str, float]] = field(default_factory=dict)
    numeric: dict[str, dict[str, float]] = field(default_factory=dict)


def manifest_stats(path: str | Path) -> ManifestStats:
    """Count utterances, audio duration (from ``duration`` or the file header), splits, labels."""
    from featcache.audio import AudioInfoCache

    manifest = Manifest.load(path)
    infos = AudioInfoCache()
    seconds, unknown = 0.0, 0
    for utt in manifest:
        if utt.duration is not None:
            seconds += utt.duration
            continue
        info = infos.info(utt.audio)
        if isinstance(info, Exception):
            unknown += 1
        else:
            seconds += info.frames / info.samplerate - utt.start
    splits = Counter(u.split or "(none)" for u in manifest)
    stats = ManifestStats(str(path), len(manifest), seconds, unknown, dict(sorted(splits.items())))
    for name in manifest.fields():
        values = manifest.labels(name)
        if name in TEXT_FIELDS or any(isinstance(v, str) and len(v) > 40 for v in values):
            texts = [v for v in values if isinstance(v, str)]
            stats.text[name] = {
                "count": len(texts),
                "unique": len(set(texts)),
                "mean_chars": sum(map(len, texts)) / max(1, len(texts)),
            }
            continue
        present = [v for v in values if v is not None]
        if not present:
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
        if numeric and (
            len(set(present)) > MAX_NUMERIC_CLASSES or any(isinstance(v, float) for v in present)
        ):
            stats.numeric[name] = {  # scores and measurements: a range, not a table
                "count": len(present),
                "min": min(present),
                "mean": sum(present) / len(present),
                "max": max(present),
            }
            continue
        stats.labels[name] = Counter(str(v) for v in values if v is not None)
        stats.per_split[name] = {
            split: Counter(
                str(u.get(name))
                for u in manifest
                if (u.split or "(none)") == split and u.get(name) is not None
            )
            for split in stats.splits
        }
    return stats


def format_stats(stats: ManifestStats, max_values: int = 12) -> str:
    """A plain-text report of :class:`ManifestStats`."""
    hours = stats.seconds / 3600
    lines = [
        f"manifest      {stats.path}",
        f"utterances    {stats.utterances}",
        f"audio         {hours:.3f} h ({stats.seconds:.1f} s, mean {stats.seconds / max(1, stats.utterances):.2f} s/utt)",
    ]
    if stats.unknown_durations:
        lines.append(
            f"              ({stats.unknown_durations} utterance(s) with unreadable audio not counted)"
        )
    lines.append("splits        " + ", ".join(f"{k}: {v}" for k, v in stats.splits.items()))
    split_names = list(stats.splits)
    widths = [max(8, len(s) + 2) for s in split_names]
    for name, counter in stats.labels.items():
        shown = counter.most_common(max_values)
        width = min(MAX_VALUE_CHARS, max([len("value"), *(len(v) for v, _ in shown)])) + 2
        lines.append("")
        lines.append(f"label '{name}': {len(counter)} value(s)")
        header = f"  {'value':<{width}}{'total':>7}"
        header += "".join(f"{s:>{w}}" for s, w in zip(split_names, widths, strict=True))
        lines.append(header)
        for value, count in shown:
            cut = value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 3] + "..."
            row = f"  {cut:<{width}}{count:>7}"
            row += "".join(
                f"{stats.per_split[name][s].get(value, 0):>{w}}"
                for s, w in zip(split_names, widths, strict=True)
            )
            lines.append(row)
        if len(counter) > max_values:
            lines.append(f"  ... and {len(counter) - max_values} more")
    for name, n in stats.numeric.items():
        lines.append("")
        lines.append(
            f"numeric '{name}': {n['count']} value(s), min {n['min']:.4g}, "
            f"mean {n['mean']:.4g}, max {n['max']:.4g}"
        )
    for name, t in stats.text.items():
        lines.append("")
        lines.append(
            f"text '{name}': {t['count']} transcript(s), {t['unique']} unique, "
            f"{t['mean_chars']:.1f} characters on average"
        )
    return "\n".join(lines)
