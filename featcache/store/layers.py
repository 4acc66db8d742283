"""``--layers`` specs: which of an upstream's hidden states a store keeps."""

from __future__ import annotations

from featcache.errors import ConfigError


def parse_layers(spec: str | None, num_layers: int, upstream: str = "this upstream") -> list[int]:
    """Parse a ``--layers`` spec such as ``0,4,8-12`` into sorted unique indices.

    Parameters
    ----------
    spec : str or None
        Comma-separated indices and inclusive ranges; None or ``all`` keeps every layer.
        Negative indices count from the end (``-1`` is the last layer).
    num_layers : int
        L of the upstream.
    upstream : str
        Named in error messages.
    """
    if spec is None or spec.strip() in ("", "all"):
        return list(range(num_layers))
    out: set[int] = set()
    for item in spec.split(","):
        item = item.strip()
        try:
            if "-" in item[1:]:
                cut = item.index("-", 1)
                out.update(range(int(item[:cut]), int(item[cut + 1 :]) + 1))
            else:
                i = int(item)
                out.add(i % num_layers if -num_layers <= i < 0 else i)
        except ValueError:
            raise ConfigError(
                f"--layers {spec!r}: cannot parse {item!r}; use indices and ranges like 0,4,8-12"
            ) from None
    bad = sorted(i for i in out if not 0 <= i < num_layers)
    if bad or not out:
        raise ConfigError(
            f"--layers {spec!r}: layer(s) {bad} out of range; {upstream} has layers "
            f"0-{num_layers - 1}; extract it in a separate run with other --layers"
        )
    return sorted(out)
