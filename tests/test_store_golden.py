"""Stores keep the same bytes in every array across refactors of the writing code.

``tests/data/store_digests.json`` holds the sha256 of every array of stores written from fixed
arrays by the code of commit 2d6ca40 (before the ``Cache`` refactor); each store is written here
again by today's code and must match array for array. The int8 cases (frames and scales) were
added with int8 itself (issue 12), from the code that introduced it. Arrays come from a seeded generator, not a
model, so the digests do not depend on the CPU's float kernels.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from featcache.manifest import Manifest
from featcache.testing.caches import write_cache

GOLDEN = Path(__file__).parent / "data" / "store_digests.json"
CASES = [
    (fmt, dtype, layers)
    for fmt in ("zarr", "hdf5")
    for dtype in ("float16", "float32", "int8")
    for layers in (None, [1, 3])
]


def _case_name(fmt, dtype, layers):
    return f"{fmt}-{dtype}-{'all' if layers is None else '-'.join(map(str, layers))}"


def _manifest(n):
    return Manifest.from_records([{"id": f"u{i:02d}", "audio": f"/a/{i}.wav"} for i in range(n)])


def _arrays(n, num_layers):
    rng = np.random.default_rng(7)
    lengths = [3, 1100, 40, 2049, 1, 512, 77, 1024, 5, 300][:n]
    return {
        f"u{i:02d}": (rng.standard_normal((t, num_layers, 6)) * 3).astype(np.float32)
        for i, t in enumerate(lengths)
    }


def write_case(root: Path, fmt: str, dtype: str, layers) -> Path:
    """Build the store of one case: 8 utterances, then 2 appended, one failed utterance."""
    num_layers = 4 if layers is None else len(layers)
    arrays = _arrays(10, num_layers)
    first = {u: a for u, a in arrays.items() if u < "u08" and u != "u02"}
    kwargs = dict(format=fmt, dtype=dtype, layers=layers, part_size=3)
    errors = {"u02": "unreadable audio"}
    write_cache(root, "up", first, _manifest(8), errors=errors, **kwargs)
    rest = {u: a for u, a in arrays.items() if u != "u02"}
    return write_cache(root, "up", rest, _manifest(10), errors=errors, **kwargs)


def array_digests(path: Path, fmt: str) -> dict[str, str]:
    """sha256 of the raw bytes of every array in a store (strings joined by NUL), by path."""
    out = {}
    if fmt == "zarr":
        import zarr

        group = zarr.open_group(str(path), mode="r")
        items = [(name, arr[...]) for name, arr in group.arrays()]
        items += [(f"{g}/{name}", arr[...]) for g in ("pooled", "errors")
                  for name, arr in group[g].arrays()]  # fmt: skip
        items += [(f"parts/{k}/{name}", arr[...]) for k, sub in group["parts"].groups()
                  for name, arr in sub.arrays()]  # fmt: skip
    else:
        import h5py
        import hdf5plugin  # noqa: F401

        items = []
        with h5py.File(path, "r") as f:
            f.visititems(
                lambda name, obj: (
                    items.append((name, obj.asstr()[...] if obj.dtype.kind == "O" else obj[...]))
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
    for name, values in sorted(items):
        values = np.asarray(values)
        if values.dtype.kind in "OUST":
            data = "\0".join(map(str, values.tolist())).encode("utf-8")
        else:
            data = values.dtype.str.encode() + str(values.shape).encode() + values.tobytes()
        out[name] = hashlib.sha256(data).hexdigest()
    return out


@pytest.mark.parametrize(("fmt", "dtype", "layers"), CASES, ids=[_case_name(*c) for c in CASES])
def test_arrays_match_the_stores_written_before(tmp_path, fmt, dtype, layers):
    golden = json.loads(GOLDEN.read_text())[_case_name(fmt, dtype, layers)]
    path = write_case(tmp_path, fmt, dtype, layers)
    assert array_digests(path, fmt) == golden
