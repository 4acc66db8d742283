"""Summaries of a cache folder for ``featcache info``."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

from featcache.errors import StoreNotFoundError
from featcache.store import format_of, get_backend, list_stores
from featcache.store.location import is_remote
from featcache.store.paths import work_dir
from featcache.store.verify import last_verified


def describe_cache(cache_dir, storage_options: dict | None = None) -> list[dict]:
    """One dict per store in ``cache_dir`` (a folder or a URL).

    Keys: ``name``, ``path``, ``format``, ``complete``, ``utterances``, ``failed``, ``errors``
    (id -> reason), ``parts`` ("done/planned" while incomplete), ``layers``, ``num_layers``,
    ``model_num_layers``, ``hidden_size``, ``frame_rate``, ``dtype``, ``bytes``, ``upstream``
    (provenance), ``policy``, ``created``, ``frames``, and for int8 stores ``float16_bytes`` /
    ``int8_bytes``: the frame bytes the store would hold in float16 and holds in int8 (with scales).
    """
    stores = list_stores(cache_dir, storage_options)
    if not stores:
        raise StoreNotFoundError(f"{cache_dir}: no featcache store here; run `featcache extract`")
    return [_describe(name, path) for name, path in stores.items()]


def _describe(name: str, path: Path) -> dict:
    format = format_of(path)
    backend = get_backend(format)
    attrs = backend.read_attrs(path)
    out = {
        "name": name,
        "path": str(path),
        "format": format,
        "complete": bool(attrs.get("complete")),
        "layers": attrs["layers"],
        "num_layers": attrs["num_layers"],
        "model_num_layers": attrs.get("model_num_layers", attrs["num_layers"]),
        "hidden_size": attrs["hidden_size"],
        "frame_rate": attrs["frame_rate"],
        "dtype": attrs["dtype"],
        "chunk_frames": attrs.get("chunk_frames", 1024),
        "bytes": _disk_bytes(path) + _disk_bytes(work_dir(path)),
        "upstream": attrs["upstream"],
        "policy": attrs.get("policy", {}),
        "created": attrs.get("created"),
        "errors": {},
        "parts": "",
        "verified": last_verified(path.parent, name, path),
    }
    if out["complete"]:
        handle = backend.open_read(path)
        index = handle.index()
        handle.close()
        out["utterances"] = len(index.utt_id)
        out["failed"] = len(index.error_ids)
        out["errors"] = dict(zip(index.error_ids, index.error_reasons, strict=True))
        per_part: dict[int, int] = {}
        for k, n in zip(index.part, index.num_frames, strict=True):
            per_part[int(k)] = per_part.get(int(k), 0) + int(n)
    else:
        done = backend.complete_parts(path)
        plan_file = work_dir(path) / "plan.json"
        planned = len(json.loads(plan_file.read_text())["parts"]) if plan_file.exists() else 0
        out["utterances"] = sum(len(m.utt_ids) for m in done.values())
        out["failed"] = sum(len(m.errors) for m in done.values())
        out["errors"] = {u: r for m in done.values() for u, r in m.errors.items()}
        out["parts"] = f"{len(done)}/{planned}"
        per_part = {k: sum(m.num_frames) for k, m in done.items()}
    out["frames"] = sum(per_part.values())
    if attrs["dtype"] == "int8":
        out.update(_int8_bytes(per_part, attrs))
    return out


def _int8_bytes(per_part: dict[int, int], attrs: dict) -> dict:
    """Frame bytes (uncompressed) in float16 vs int8 frames plus float32 scale rows."""
    values = attrs["num_layers"] * attrs["hidden_size"]
    chunk = attrs.get("chunk_frames", 1024)
    rows = sum(-(-n // chunk) for n in per_part.values())
    frames = sum(per_part.values())
    return {"float16_bytes": 2 * frames * values, "int8_bytes": frames * values + 4 * rows * values}


def format_table(rows: list[dict], show_errors: int = 5) -> str:
    """A readable plain-text table of :func:`describe_cache` rows, then provenance and failures."""
    head = ("store", "status", "done", "failed", "layers", "dim", "frames/s", "dtype", "size")
    table = [head]
    for r in rows:
        status = "complete" if r["complete"] else f"partial {r['parts']} parts"
        layers = _layer_spec(r["layers"], r["model_num_layers"])
        table.append((
            r["name"], status, str(r["utterances"]), str(r["failed"]), layers,
            str(r["hidden_size"]), f"{r['frame_rate']:g}", r["dtype"], _human(r["bytes"]),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in rows:
        up = r["upstream"]
        rev = f" @ {up['revision']}" if up.get("revision") else ""
        sha = (up.get("config_sha256") or "")[:12]
        untrained = " (untrained: random weights)" if up.get("untrained") else ""
        lines.append("")
        lines.append(f"{r['name']} ({r['format']}, {r['path']}):")
        source = "" if up.get("source") == up.get("name") else f" = {up.get('source')}"
        lines.append(f"  upstream  {up.get('name')}{source}{rev}{untrained}")
        lines.append(
            f"  model     {up.get('architecture')}, config sha256 {sha}, created {r['created']}"
        )
        lines.append(f"  verified  {r['verified']}")
        if "int8_bytes" in r and r["float16_bytes"]:
            ratio = r["int8_bytes"] / r["float16_bytes"]
            saved = _human(r["float16_bytes"] - r["int8_bytes"])
            lines.append(
                f"  dtype     int8, scale per {r.get('chunk_frames', 1024)} frames x layer x "
                f"channel: frames {ratio:.2f}x of float16, {saved} saved"
            )
        if r["policy"]:
            policy = "; ".join(f"{k}={v}" for k, v in r["policy"].items())
            wrapped = textwrap.wrap(policy, width=96, initial_indent="  policy    ",
                                    subsequent_indent="            ")  # fmt: skip
            lines.extend(wrapped)
        for i, (utt_id, reason) in enumerate(r["errors"].items()):
            if i == show_errors:
                lines.append(f"  ... {len(r['errors']) - show_errors} more failed (--errors N)")
                break
            lines.append(f"  failed    {utt_id}: {reason}")
    return "\n".join(lines)


def _layer_spec(layers: list[int], total: int) -> str:
    if layers == list(range(total)):
        return f"all {total}"
    runs, start = [], layers[0]
    for a, b in zip(layers, [*layers[1:], None], strict=True):
        if b != a + 1:
            runs.append(str(a) if a == start else f"{start}-{a}")
            start = b
    return f"{len(layers)}/{total}: " + ",".join(runs)


def _disk_bytes(path: Path) -> int:
    if is_remote(path):
        return path.du()
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.stat(os.path.join(root, f)).st_size for f in files)
    return total


def _human(n: float) -> str:
    """Sizes in MiB, as the report and every other command print them."""
    return f"{n / 2**20:.1f} MiB"
