"""write_atomic: a reader sees the old file or the whole new one, never a part."""

from __future__ import annotations

import pytest

from featcache.atomic import replacing, write_atomic, write_json


def test_writes_bytes_text_and_through_a_writer(tmp_path):
    write_atomic(tmp_path / "a.bin", b"\x00\x01")
    write_atomic(tmp_path / "sub" / "b.txt", "héllo")
    write_atomic(tmp_path / "c.bin", lambda f: f.write(b"abc"))
    write_json(tmp_path / "d.json", {"b": 1, "a": [2]}, sort_keys=True)
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "sub" / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "c.bin").read_bytes() == b"abc"
    assert (tmp_path / "d.json").read_text() == '{"a": [2], "b": 1}\n'


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def half_then_crash(f):
        f.write(b"new but only ha")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, half_then_crash)
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        tmp.write_text("also new")
        raise RuntimeError
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
