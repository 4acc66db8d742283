"""``featcache verify``: check every store of a cache folder, and mark damaged parts for rebuild.

A quick check reads each store's attrs and index, checks that the index points inside parts that
exist, and that every part has its metadata, its pooled means and (Zarr) every chunk key a part
of its length must have. ``deep`` also reads every chunk through the checksum codec (Zarr
``crc32c``, HDF5 fletcher32). :func:`repair` drops the damaged parts and writes the store's part
plan, so the next ``featcache extract`` with the same command recomputes exactly those parts, in
the same places, and rewrites the index: the result equals a clean run.

Each check is recorded in ``CACHE/.verified.json`` (store name -> when, deep, ok, and a stamp of
the store's metadata file), which ``featcache info`` shows.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from featcache.atomic import write_json
from featcache.errors import StoreError
from featcache.store import format_of, get_backend
from featcache.store.base import CHUNK_FRAMES, PartMeta
from featcache.store.damage import DECODE_ERRORS
from featcache.store.location import as_location, is_remote, write_file
from featcache.store.paths import work_dir

RECORD = ".verified.json"


@dataclass
class StoreCheck:
    """What :func:`verify_store` found in one store.

    Attributes
    ----------
    path : Path
    complete : bool
        False for a store still being built (its parts are checked, not its index).
    parts : int
        Parts checked.
    chunks : int
        Chunks read through the checksum (``deep`` only).
    problems : list of (part or None, message)
        ``None`` for the attrs or index; a part number for damage inside that part.
    """

    path: Path
    complete: bool = False
    parts: int = 0
    chunks: int = 0
    problems: list[tuple[int | None, str]] = field(default_factory=list)
    metas: dict[int, PartMeta] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def damaged_parts(self) -> list[int]:
        return sorted({k for k, _ in self.problems if k is not None})


def verify_store(path: Path, deep: bool = False) -> StoreCheck:
    """Check one store; damage becomes entries of ``problems``, never an exception."""
    from featcache.store.damage import read_checked_attrs, read_checked_index

    path = as_location(path)
    check = StoreCheck(path)
    try:
        handle = get_backend(format_of(path)).open_read(path)
        attrs = read_checked_attrs(handle, path)
    except (StoreError, *DECODE_ERRORS) as e:
        check.problems.append((None, _text(e)))
        return check
    try:
        check.complete = bool(attrs.get("complete"))
        _check_parts(handle, attrs, check, deep)
        if check.complete:
            try:
                index = read_checked_index(handle, path)
                _check_index(handle, index, check, deep)
            except (StoreError, *DECODE_ERRORS) as e:
                check.problems.append((None, _text(e)))
    finally:
        handle.close()
    return check


def _check_parts(handle, attrs: dict, check: StoreCheck, deep: bool) -> None:
    shape_ld = (attrs["num_layers"], attrs["hidden_size"])
    for k in handle.part_numbers():
        check.parts += 1
        try:
            meta = handle.part_meta(k)
            check.metas[k] = meta
            frames = handle.frames(k)  # Zarr: every chunk key present, or a StoreError
            if tuple(frames.shape[1:]) != shape_ld:
                raise StoreError(f"frames (L, D) {tuple(frames.shape[1:])}, attrs say {shape_ld}")
            if frames.shape[0] != sum(meta.num_frames):
                raise StoreError(
                    f"frames has {frames.shape[0]} rows, its utterances {sum(meta.num_frames)}"
                )
            pooled = handle.part_pooled(k, read=deep)
            if tuple(pooled.shape) != (len(meta.utt_ids), *shape_ld):
                raise StoreError(f"pooled has shape {tuple(pooled.shape)}")
            if deep:
                for start in range(0, frames.shape[0], CHUNK_FRAMES):
                    frames[start : start + CHUNK_FRAMES]  # decoded through the checksum
                    check.chunks += shape_ld[0]
        except (StoreError, *DECODE_ERRORS) as e:
            check.problems.append((k, f"part {k}: {_text(e)}"))


def _check_index(handle, index, check: StoreCheck, deep: bool) -> None:
    lengths = {k: sum(m.num_frames) for k, m in check.metas.items()}
    for i, (k, off, n) in enumerate(zip(index.part, index.offset, index.num_frames, strict=True)):
        if int(k) not in lengths or off < 0 or off + n > lengths[int(k)]:
            raise StoreError(
                f"index row {i} ({index.utt_id[i]!r}) points at part {int(k)} frames "
                f"{int(off)}-{int(off + n) - 1}, which the parts do not hold"
            )
    if deep:
        pooled = handle.pooled()
        if len(pooled) != len(index.utt_id):
            raise StoreError(f"pooled/mean has {len(pooled)} rows for {len(index.utt_id)} ids")


def verify_cache(cache_dir, deep: bool = False) -> list[StoreCheck]:
    """:func:`verify_store` on every store of ``cache_dir``, each result recorded for ``info``."""
    from featcache.store.names import list_stores

    stores = list_stores(cache_dir)
    if not stores:
        raise StoreError(f"{cache_dir}: no featcache store here; run `featcache extract`")
    checks = [verify_store(path, deep) for path in stores.values()]
    for name, check in zip(stores, checks, strict=True):
        record(as_location(cache_dir), name, check, deep)
    return checks


def repair(check: StoreCheck, manifest_ids: list[str] | None = None) -> list[int]:
    """Mark ``check``'s damaged parts (and a damaged index) for the next ``extract``.

    Writes the store's full part plan into its work folder, removes the damaged parts and marks
    the store incomplete. Returns the parts removed.

    Raises
    ------
    StoreError
        When the damage is in the store's attrs or root metadata: only a rebuild helps then.
    """
    path = check.path
    backend = get_backend(format_of(path))
    try:
        backend.read_attrs(path)
    except (StoreError, *DECODE_ERRORS) as e:
        raise StoreError(
            f"{path}: its metadata is damaged beyond repair ({_text(e)}); rebuild it with "
            f"`featcache extract ... --overwrite`"
        ) from None
    bad = check.damaged_parts
    unknown = [k for k in bad if k not in check.metas]
    if unknown:
        raise StoreError(
            f"{path}: part(s) {unknown} lost their metadata, so which utterances they held is "
            f"unknown; rebuild the store with `featcache extract ... --overwrite`"
        )
    position = {u: i for i, u in enumerate(manifest_ids or [])}
    plan = {}
    for k, meta in sorted(check.metas.items()):
        ids = meta.utt_ids + sorted(meta.errors)
        plan[k] = sorted(ids, key=lambda u: position.get(u, len(position)))
    work = work_dir(path)
    work.mkdir(parents=True, exist_ok=True)
    part_size = max((len(v) for v in plan.values()), default=1)
    write_json(work / "plan.json", {"part_size": part_size, "parts": plan}, sort_keys=True)
    backend.drop_parts(path, bad)
    return bad


def record(cache_dir: Path, name: str, check: StoreCheck, deep: bool) -> None:
    """Note in ``CACHE/.verified.json`` that store ``name`` was checked, and how it went."""
    file = cache_dir / RECORD
    seen = _read_record(cache_dir)
    when = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")  # noqa: UP017
    seen[name] = {"when": when, "deep": deep, "ok": check.ok, "stamp": stamp(check.path),
                  "problems": [m for _, m in check.problems][:5]}  # fmt: skip
    write_file(file, json.dumps(seen, sort_keys=True))


def last_verified(cache_dir: Path, name: str, path: Path) -> str:
    """How ``info`` describes the store's last check: never, changed since, or when and result."""
    entry = _read_record(as_location(cache_dir)).get(name)
    if entry is None:
        return "never verified (run `featcache verify CACHE`)"
    if entry.get("stamp") != stamp(path):
        return f"changed since verified at {entry['when']} (run `featcache verify CACHE`)"
    how = "deep" if entry.get("deep") else "quick"
    result = "ok" if entry.get("ok") else "DAMAGED (run `featcache verify CACHE --repair`)"
    return f"{how} check {entry['when']}: {result}"


def stamp(path: Path) -> list[int]:
    """Modification time and size of the store's root metadata: changes whenever it is written."""
    if is_remote(path):  # an object's ETag changes with every PUT; its size goes with it
        try:
            info = path.fs.info((path / "zarr.json").path)
        except OSError:
            return []
        etag = str(info.get("ETag") or info.get("LastModified") or "")
        return [int.from_bytes(etag.encode()[-8:] or b"0", "big"), int(info.get("size", 0))]
    meta = path / "zarr.json" if path.is_dir() else path
    try:
        st = os.stat(meta)
    except OSError:
        return []
    return [st.st_mtime_ns, st.st_size]


def _read_record(cache_dir: Path) -> dict:
    try:
        data = json.loads((cache_dir / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
