"""Checksummed stores: damage is an error naming store, part and frames; verify finds it;
``verify --repair`` plus the same extract gives the clean run's arrays."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from featcache.errors import StoreError
from featcache.pipelines.extract import ExtractConfig, extract
from featcache.store import open_cache
from featcache.testing.caches import extracted_cache, read_all_arrays, run_cli

FORMATS = {"zarr": "fbank.zarr", "hdf5": "fbank.h5"}


def _extract(manifest, cache, format):
    return extract(ExtractConfig(manifest=manifest, upstreams=["fbank"], cache=cache,
                                 format=format, part_size=2, progress=False))  # fmt: skip


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean fbank cache per format over 6 tone utterances (3 parts of 2)."""
    return extracted_cache(tmp_path_factory.mktemp("clean"), formats=tuple(FORMATS))


def _copy(clean, format, tmp_path):
    manifest, caches = clean
    cache = tmp_path / "cache"
    shutil.copytree(caches[format], cache)
    return manifest, cache, cache / FORMATS[format]


def _chunk(store, part=1):
    """(file, byte offset, size) of the first frames chunk of ``part``."""
    if store.suffix == ".zarr":
        file = store / "parts" / str(part) / "frames" / "c" / "0" / "0" / "0"
        return file, 0, file.stat().st_size
    import h5py
    import hdf5plugin  # noqa: F401

    with h5py.File(store, "r") as f:
        info = f[f"parts/{part}/frames"].id.get_chunk_info(0)
    return store, info.byte_offset, info.size


def _flip(store, part=1):
    file, offset, size = _chunk(store, part)
    data = bytearray(file.read_bytes())
    data[offset + size // 2] ^= 0x40
    file.write_bytes(bytes(data))


def _cli(capsys, *argv):
    code = run_cli(*argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _part_one_utterance(store):
    reader = open_cache(store)
    i = int(np.flatnonzero(reader._part == 1)[0])
    return reader, reader.utterances[i]


@pytest.mark.parametrize("format", FORMATS)
def test_every_array_carries_a_checksum(clean, format):
    _, caches = clean
    store = caches[format] / FORMATS[format]
    if format == "zarr":
        import zarr

        for name, node in zarr.open_group(str(store), mode="r").members(max_depth=None):
            if isinstance(node, zarr.Array):
                assert "crc32c" in [c.to_dict()["name"] for c in node.metadata.codecs], name
    else:
        import h5py
        import hdf5plugin  # noqa: F401

        datasets = []
        with h5py.File(store, "r") as f:
            f.visititems(lambda n, o: datasets.append((n, o.fletcher32))
                         if isinstance(o, h5py.Dataset) else None)  # fmt: skip
        assert datasets and all(ok for _, ok in datasets), datasets


@pytest.mark.parametrize("format", FORMATS)
def test_flipped_byte_is_an_error_naming_store_part_and_frames(clean, format, tmp_path):
    _, _, store = _copy(clean, format, tmp_path)
    _flip(store)
    reader, utt = _part_one_utterance(store)
    with pytest.raises(StoreError, match=rf"{store.name}: part 1, frames \d+-\d+ is damaged"):
        reader.get(utt)
    with pytest.raises(StoreError, match="part 1"):
        reader.layer(0).compute()


@pytest.mark.parametrize("damage", ["truncate", "empty", "delete"])
def test_truncated_empty_or_deleted_zarr_chunk_is_an_error(clean, tmp_path, damage):
    _, _, store = _copy(clean, "zarr", tmp_path)
    file, _, size = _chunk(store)
    if damage == "delete":
        file.unlink()
    else:
        file.write_bytes(file.read_bytes()[: size // 2 if damage == "truncate" else 0])
    reader, utt = _part_one_utterance(store)
    with pytest.raises(StoreError, match=r"part 1, frames 0-\d+ is damaged"):
        reader.get(utt)


@pytest.mark.parametrize("format", FORMATS)
def test_verify_finds_damage_and_repair_then_extract_equals_a_clean_run(
    clean, format, tmp_path, capsys
):
    manifest, caches = clean
    _, cache, store = _copy(clean, format, tmp_path)
    code, out, _ = _cli(capsys, "verify", cache, "--deep")
    assert code == 0, out
    _flip(store)
    code, out, _ = _cli(capsys, "verify", cache, "--deep")
    assert code == 2 and "DAMAGED part 1:" in out
    code, out, _ = _cli(capsys, "verify", cache, "--deep", "--repair")
    assert "marked for rebuild (parts [1]" in out
    result = _extract(manifest, cache, format)
    assert (result.stores[0].parts_computed, result.stores[0].parts_reused) == (1, 2)
    got, want = read_all_arrays(store), read_all_arrays(caches[format] / FORMATS[format])
    assert got.keys() == want.keys()
    for key in want:
        assert np.array_equal(got[key], want[key]), key


def test_quick_verify_finds_a_deleted_chunk(clean, tmp_path, capsys):
    _, cache, store = _copy(clean, "zarr", tmp_path)
    _chunk(store, part=2)[0].unlink()
    code, out, _ = _cli(capsys, "verify", cache)
    assert code == 2 and "DAMAGED part 2:" in out and "chunk file(s) missing" in out


def test_info_says_when_a_store_was_never_verified(clean, tmp_path, capsys):
    _, cache, _ = _copy(clean, "zarr", tmp_path)
    (cache / ".verified.json").unlink(missing_ok=True)
    from featcache.store.info import describe_cache

    assert describe_cache(cache)[0]["verified"].startswith("never verified")
    _cli(capsys, "verify", cache)
    assert describe_cache(cache)[0]["verified"].endswith(": ok")


def _garbage_attrs(store):
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"]["featcache"] = "garbage"
    (store / "zarr.json").write_text(json.dumps(meta))


def _edit_hidden_size(store):
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"]["featcache"]["hidden_size"] += 1
    (store / "zarr.json").write_text(json.dumps(meta))


METADATA_DAMAGE = {
    "garbage attrs": _garbage_attrs,
    "deleted utt_id": lambda s: shutil.rmtree(s / "utt_id"),
    "truncated zarr.json": lambda s: (s / "zarr.json").write_text(
        (s / "zarr.json").read_text()[:40]
    ),
    "empty index chunk": lambda s: (s / "num_frames" / "c" / "0").write_bytes(b""),
    "edited hidden_size": _edit_hidden_size,
}


@pytest.mark.parametrize("damage", METADATA_DAMAGE)
def test_damaged_metadata_is_a_one_line_error(clean, tmp_path, capsys, damage):
    _, cache, store = _copy(clean, "zarr", tmp_path)
    METADATA_DAMAGE[damage](store)
    code, _, err = _cli(capsys, "probe", "--cache", cache, "--label", "label", "--cv", "2",
                        "--out", tmp_path / "probe")  # fmt: skip
    assert code == 1, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert store.name in err
    code, out, _ = _cli(capsys, "verify", cache)
    assert code == 2 and "DAMAGED" in out


def test_bad_hdf5_bytes_are_a_one_line_error(clean, tmp_path, capsys):
    _, cache, store = _copy(clean, "hdf5", tmp_path)
    data = bytearray(store.read_bytes())
    data[:64] = b"\0" * 64  # the superblock
    store.write_bytes(bytes(data))
    code, _, err = _cli(capsys, "info", cache)
    assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "fbank.h5" in err
