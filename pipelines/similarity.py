"""The similarity stage: linear CKA between every layer pair of every upstream pair.

``run_similarity`` reads a cache folder and writes ``similarity.npz`` (the matrices),
``similarity.png`` and, last, ``similarity.json`` (:data:`DONE`, the marker ``featcache run``
checks). CKA is computed in minibatches (:mod:`featcache.analysis.cka`), over the utterances
every upstream holds.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from featcache.analysis.inputs import load_manifest, out_folder, pooled_features, select_utterances
from featcache.analysis.registry import LEVELS
from featcache.atomic import read_json, write_atomic
from featcache.errors import ConfigError
from featcache.store import Cache

DONE = "similarity.json"


class SimilarityResult(TypedDict, total=False):
    """What :func:`run_similarity` returns (similarity.json holds all but ``matrices``)."""

    level: str
    names: list[str]
    layers: dict[str, list[int]]  # upstream -> model layer indices
    n: int  # utterances
    rows: dict[str, int]  # "a|b" -> rows compared
    max_frames: int | None
    split: list[str]
    matrices: dict[tuple[str, str], Any]  # (a, b) -> array (La, Lb)
    pairs: list[dict[str, Any]]  # highlights, in similarity.json


def run_similarity(
    cache,
    *,
    upstreams: Sequence[str] = (),
    level: str = "pooled",
    split: Sequence[str] = (),
    manifest=None,
    max_frames: int | None = 50000,
    seed: int = 0,
    include_self: bool = True,
    max_bytes: int | None = None,
    out=None,
    log=None,
) -> dict:
    """Linear CKA between every layer pair of every upstream pair, over their shared utterances.

    Returns
    -------
    dict
        ``level``, ``names``, ``layers`` {upstream: model layer indices}, ``n`` (utterances),
        ``rows`` {"a|b": rows compared}, ``matrices`` {(a, b): array (La, Lb)}. Written to ``out``
        as similarity.npz (``cka__A__B``, ``layers__A``), similarity.json and similarity.png.
    """
    from featcache.analysis.cka import DEFAULT_MAX_BYTES

    LEVELS.get(level)
    readers = Cache.open(cache).readers(upstreams)
    names = list(readers)
    ids, _ = select_utterances(readers, load_manifest(readers, manifest), split)
    budget = max_bytes or DEFAULT_MAX_BYTES
    pairs = list(
        itertools.combinations_with_replacement(names, 2)
        if include_self
        else itertools.combinations(names, 2)
    )
    if not pairs:
        raise ConfigError(
            f"cache {cache}: nothing to compare with --no-self and one upstream ({names[0]}); "
            "give two or more upstreams, or drop --no-self"
        )
    matrices, rows = {}, {}
    for a, b in pairs:
        ra, rb = readers[a], readers[b]
        started = time.perf_counter()
        if level == "pooled":
            matrices[(a, b)], rows[f"{a}|{b}"] = _pooled_cka(ra, rb, ids, budget)
        else:
            matrices[(a, b)], rows[f"{a}|{b}"] = _frames_cka(ra, rb, ids, max_frames, seed, budget)
        if log is not None and level != "pooled":  # frame-level pairs take a while
            log(f"  {a} vs {b}: {rows[f'{a}|{b}']} rows in {time.perf_counter() - started:.1f}s")
    result = {
        "level": level,
        "names": names,
        "layers": {n: [int(x) for x in readers[n].layers] for n in names},
        "n": len(ids),
        "rows": rows,
        "max_frames": max_frames if level == "frames" else None,
        "split": list(split),
        "matrices": matrices,
    }
    out = out_folder(out)
    if out is not None:
        _write_similarity(out, result)
    return result


def _pooled_cka(ra, rb, ids, budget):
    from featcache.analysis.cka import cka_layers

    xa = pooled_features(ra, ids)  # (N, La, Da)
    xb = xa if ra is rb else pooled_features(rb, ids)  # (N, Lb, Db)

    def read(group):
        for start in range(0, len(ids), 1024):
            yield xa[start : start + 1024][:, group], xb[start : start + 1024]

    m = cka_layers(
        read, ra.num_layers, rb.num_layers, ra.hidden_size, rb.hidden_size, max_bytes=budget
    )
    return m, len(ids)


def _frames_cka(ra, rb, ids, max_frames, seed, budget):
    """Frame-level CKA: frames aligned in time as in training, streamed in chunks per layer group."""
    from featcache.analysis.cka import cka_layers, iter_row_chunks
    from featcache.analysis.frames import FramePlan

    same = ra is rb
    plan = FramePlan([ra] if same else [ra, rb], ids, max_frames=max_frames, seed=seed)

    def read(group):
        if same:
            pieces = ((f[:, group], f) for _, (f,) in plan.utterance_rows([None]))
        else:
            pieces = ((fa, fb) for _, (fa, fb) in plan.utterance_rows([group, None]))
        return iter_row_chunks(pieces)

    m = cka_layers(
        read, ra.num_layers, rb.num_layers, ra.hidden_size, rb.hidden_size, max_bytes=budget
    )
    return m, plan.num_rows


def _write_similarity(out: Path, result: SimilarityResult) -> None:
    from featcache.analysis.plots import cka_grid, save_png
    from featcache.analysis.text import similarity_highlights

    arrays = {f"cka__{a}__{b}": m for (a, b), m in result["matrices"].items()}
    arrays.update({f"layers__{n}": np.asarray(v) for n, v in result["layers"].items()})
    arrays["names"] = np.asarray(result["names"])
    write_atomic(out / "similarity.npz", lambda f: np.savez(f, **arrays))
    title = f"linear CKA between layers ({result['level']}, {result['n']} utterances)"
    fig = cka_grid(result["names"], result["matrices"], result["layers"], title=title)
    save_png(fig, out / "similarity.png")
    meta = {k: v for k, v in result.items() if k != "matrices"}
    meta["pairs"] = similarity_highlights(result)
    write_atomic(out / DONE, json.dumps(meta, indent=2))  # last: marks the stage done


def load_similarity(folder) -> SimilarityResult:
    """Read a similarity output folder back into :func:`run_similarity`'s result form."""
    folder = Path(folder)
    meta = read_json(folder / DONE)
    with np.load(folder / "similarity.npz") as z:
        matrices = {}
        for key in z.files:
            if key.startswith("cka__"):
                a, b = key[len("cka__") :].split("__", 1)
                matrices[(a, b)] = z[key]
    return {**meta, "matrices": matrices}
