"""Small caches for tests: stores written from given arrays, or extracted by the real CLI.

:func:`write_cache` writes a store by the same code path as ``featcache extract`` (plan, parts,
index), only the hidden states come from the caller instead of a model. :func:`extracted_cache`
runs ``featcache extract`` itself (the library may not import the pipelines; the test kit drives
the CLI, as :mod:`featcache.testing.faults` does), for tests that extract into it again.
"""

from __future__ import annotations

import contextlib
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from featcache.store import Cache
from featcache.store.builder import make_attrs, open_part


def write_cache(
    cache_dir,
    name: str,
    arrays: dict[str, np.ndarray],
    manifest,
    frame_rate: float = 50.0,
    format: str = "zarr",
    *,
    dtype: str = "float32",
    errors: dict[str, str] | None = None,
    layers: list[int] | None = None,
    part_size: int = 4,
    compression: str = "lz4",
    source: str = "featcache.testing.caches",
) -> Path:
    """Write one store ``cache_dir/<name>.zarr`` (or ``.h5``) holding ``arrays``.

    Parameters
    ----------
    cache_dir : str or Path
        Cache folder; created if needed. ``manifest.jsonl`` is (re)written there.
    name : str
        Store name (an upstream slug such as ``random-tiny-hubert``).
    arrays : dict
        Utterance id -> frames ``(T, L, D)``; every array has the same L and D.
    manifest : featcache.manifest.Manifest
        Must hold every id of ``arrays`` and of ``errors``; its other utterances are recorded
        as failed ("no array given").
    frame_rate : float
        Frames per second recorded in the attrs.
    format : str
        "zarr" or "hdf5".
    dtype : str
        Stored dtype, "float32" (default, exact round trip) or "float16" (extract's default).
    errors : dict, optional
        Utterance id -> reason, recorded as failed utterances.
    layers : list of int, optional
        Model layer indices that the L axis holds (default ``0..L-1``).
    part_size : int
        Utterances per part (small, so tests exercise several parts).
    compression : str
        "lz4", "zstd" or "none".
    source : str
        Recorded as the upstream's source (a hub id or folder, as a real extraction records).

    Returns
    -------
    Path
        The store.
    """
    errors = dict(errors or {})
    unknown = [u for u in [*arrays, *errors] if u not in manifest]
    if unknown:
        raise ValueError(f"ids not in the manifest: {unknown[:5]}")
    num_layers, dim = next(iter(arrays.values())).shape[1:]
    layers = list(range(num_layers)) if layers is None else list(layers)
    cache = Cache.create(cache_dir)
    manifest.write(cache.manifest_file)
    attrs = make_attrs(
        provenance={
            "name": name,
            "source": source,
            "revision": None,
            "architecture": "given-arrays",
            "config_sha256": None,
        },
        sample_rate=16000,
        frame_rate=frame_rate,
        model_num_layers=max(layers) + 1,
        hidden_size=dim,
        layers=layers,
        dtype=dtype,
        manifest_sha256=manifest.sha256(),
        policy={"batching": "given arrays"},
        compression=compression,
    )
    builder = cache.builder(name, format, attrs, manifest.ids(), part_size=part_size)
    path = builder.path
    full = np.arange(max(layers) + 1)
    with ThreadPoolExecutor(1) as executor:
        for k in builder.missing_parts():
            part = open_part(path, format, k, attrs, executor)
            for utt_id in builder.plan[k]:
                if utt_id in arrays:
                    frames = np.asarray(arrays[utt_id], dtype=np.float32)  # (T, L, D)
                    hidden = np.zeros((len(full), *frames.shape[::2]), np.float32)
                    hidden[layers] = frames.transpose(1, 0, 2)  # (L_model, T, D)
                    part.add(utt_id, hidden)
                else:
                    part.fail(utt_id, errors.get(utt_id, "no array given"))
            part.close().result()
    builder.finalize()
    return path


def read_all_arrays(store) -> dict[str, np.ndarray]:
    """Every array of a Zarr or HDF5 store by its path, read with plain zarr/h5py.

    Two stores are the same cache, byte for byte in their arrays, when these dicts are equal
    (``np.array_equal`` per key, same keys); tests compare a repaired or resumed store with a
    clean one this way.
    """
    store = Path(store)
    out: dict[str, np.ndarray] = {}
    if store.suffix == ".h5":
        import h5py
        import hdf5plugin  # noqa: F401

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                data = obj.asstr()[...] if h5py.check_string_dtype(obj.dtype) else obj[...]
                out[name] = np.asarray(data)

        with h5py.File(store, "r") as f:
            f.visititems(visit)
        return out
    import zarr

    for name, node in zarr.open_group(str(store), mode="r").members(max_depth=None):
        if isinstance(node, zarr.Array):
            out[name] = node[...]
    return out


def run_cli(*argv, quiet: bool = False) -> int:
    """Run ``featcache ARGV...`` in this process; return its exit code (0 on success).

    A featcache error is printed in one line to stderr and exits 1, as from a shell. ``quiet``
    drops what the command prints to stdout.
    """
    from featcache.cli.main import main

    out = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    try:
        with out:
            main([str(a) for a in argv])
    except SystemExit as e:
        return e.code or 0
    return 0


def extracted_cache(
    folder, formats=("zarr",), utterances: int = 6, part_size: int = 2
) -> tuple[Path, dict[str, Path]]:
    """A tone corpus and, per store format, an ``fbank`` cache of it made by ``featcache extract``.

    Parameters
    ----------
    folder : str or Path
        Gets ``corpus/`` (:func:`featcache.testing.corpus.make_tone_corpus`) and one cache
        folder per format: ``cache`` for a single format, else ``cache-<format>``.
    formats : sequence of str
        Store formats (``featcache.store.FORMATS`` names).
    utterances, part_size : int
        Corpus size and utterances per part (6 and 2: three parts, so a test can damage or
        drop one part and keep others).

    Returns
    -------
    manifest, caches : (Path, dict of str to Path)
        The corpus manifest, and format -> cache folder. Extracting the same manifest with
        ``-u fbank --part-size PART_SIZE`` into one of them again reuses every part.
    """
    from featcache.testing.corpus import make_tone_corpus

    folder = Path(folder)
    manifest = make_tone_corpus(folder / "corpus", utterances=utterances).path
    caches = {}
    for format in formats:
        cache = folder / ("cache" if len(formats) == 1 else f"cache-{format}")
        code = run_cli("extract", manifest, "-u", "fbank", "--cache", cache, "--format", format,
                       "--part-size", part_size, "--no-progress", quiet=True)  # fmt: skip
        if code:
            raise RuntimeError(f"featcache extract into {cache} exited {code}")
        caches[format] = cache
    return manifest, caches


def two_rate_caches(root: Path, seed: int):
    """60 labelled utterances in two stores at different frame rates, for loader tests.

    ``a`` is a float16 Zarr store (3 layers x 8 dims, 50 frames/s, parts of 7 utterances),
    ``b`` a float32 HDF5 store (2 x 4, 100 frames/s, twice ``a``'s frames, parts of 11), so
    batches cross part boundaries and formats. Splits cycle train, train, train, dev, test;
    labels ``c0``-``c2``, with ``a``'s values shifted by the label.

    Returns
    -------
    (cache folder, manifest, ``b``'s arrays by utterance id)
    """
    from featcache.manifest import Manifest

    root = Path(root)
    rng = np.random.default_rng(seed)
    records, a, b = [], {}, {}
    for i in range(60):
        split = ("train", "train", "train", "dev", "test")[i % 5]
        records.append({"id": f"u{i:02d}", "audio": "x.wav", "label": f"c{i % 3}", "split": split})
        t = int(rng.integers(4, 60))
        a[f"u{i:02d}"] = (rng.normal(size=(t, 3, 8)) + i % 3).astype(np.float32)  # (T, 3, 8)
        b[f"u{i:02d}"] = rng.normal(size=(2 * t, 2, 4)).astype(np.float32)  # (2T, 2, 4)
    manifest = Manifest.from_records(records, root / "manifest.jsonl")
    write_cache(root / "cache", "a", a, manifest, 50.0, dtype="float16", part_size=7)
    write_cache(root / "cache", "b", b, manifest, 100.0, format="hdf5", part_size=11)
    return root / "cache", manifest, b
