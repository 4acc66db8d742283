"""Bad audio never sinks a job: each bad file is recorded with its reason, the rest complete."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from featcache.cli.main import main
from featcache.store import open_cache

SR = 16000


def _bad_corpus(root):
    """Good files, files that must work after conversion, and ten kinds of bad input."""
    rng = np.random.default_rng(0)
    noise = lambda s: (0.1 * rng.standard_normal(int(SR * s))).astype(np.float32)  # noqa: E731
    sf.write(root / "good1.wav", noise(0.8), SR)
    sf.write(root / "good2.flac", noise(0.5), SR)
    sf.write(root / "rate8k.wav", noise(0.6)[:4800], 8000)  # resampled to 16 kHz
    sf.write(root / "stereo.wav", np.stack([noise(0.6), noise(0.6)], axis=1), SR)  # downmixed
    sf.write(root / "short.wav", noise(0.01), SR)  # 160 samples: too short for a 400-sample conv
    sf.write(root / "empty.wav", np.zeros(0, np.float32), SR)
    sf.write(root / "nan.wav", np.full(8000, np.nan, np.float32), SR, subtype="FLOAT")
    (root / "text.wav").write_text("this is not audio\n" * 50)
    (root / "random.flac").write_bytes(rng.bytes(5000))
    sf.write(root / "truncated.wav", noise(1.0), SR)
    data = (root / "truncated.wav").read_bytes()
    (root / "truncated.wav").write_bytes(data[: len(data) // 3])  # header promises 1 s
    (root / "folder.wav").mkdir()
    records = [
        {"id": "good1", "audio": "good1.wav"},
        {"id": "missing", "audio": "does-not-exist.wav"},
        {"id": "good2", "audio": "good2.flac"},
        {"id": "rate8k", "audio": "rate8k.wav"},
        {"id": "stereo", "audio": "stereo.wav"},
        {"id": "stereo-right", "audio": "stereo.wav", "channel": 1},
        {"id": "short", "audio": "short.wav"},
        {"id": "empty", "audio": "empty.wav"},
        {"id": "nan", "audio": "nan.wav"},
        {"id": "text", "audio": "text.wav"},
        {"id": "random-bytes", "audio": "random.flac"},
        {"id": "truncated", "audio": "truncated.wav"},
        {"id": "folder", "audio": "folder.wav"},
        {"id": "past-end", "audio": "good1.wav", "start": 0.5, "duration": 2.0},
        {"id": "bad-channel", "audio": "good1.wav", "channel": 3},
    ]
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root / "m.jsonl"


BAD = ["missing", "short", "empty", "nan", "text", "random-bytes", "truncated", "folder",
       "past-end", "bad-channel"]  # fmt: skip
GOOD = ["good1", "good2", "rate8k", "stereo", "stereo-right"]


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_bad_files_are_recorded_and_the_rest_complete(tmp_path, capsys, fmt):
    manifest = _bad_corpus(tmp_path)
    cache = tmp_path / "cache"
    args = ["extract", str(manifest), "-u", "random:tiny-hubert", "--cache", str(cache),
            "--format", fmt, "--part-size", "4", "--device", "cpu", "--no-progress"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 3
    out = capsys.readouterr().out
    for u in BAD:
        assert f"failed {u}: " in out  # the summary names each failure with its reason
    assert "5 utterances cached, 10 failed" in out

    r = open_cache(cache)
    assert r.utterances == GOOD
    assert sorted(r.errors) == sorted(BAD)
    assert "shorter than" in r.errors["short"]
    assert "not found" in r.errors["missing"]
    assert "empty" in r.errors["empty"]
    assert "NaN" in r.errors["nan"]
    assert "truncated" in r.errors["truncated"]
    assert "channel 3" in r.errors["bad-channel"]
    # 8 kHz input was resampled: 0.6 s at 16 kHz gives (9600 - 400) // 320 + 1 frames
    assert r.num_frames[r.index("rate8k")] == (9600 - 400) // 320 + 1
    assert not np.array_equal(r.get("stereo"), r.get("stereo-right"))

    # rerunning does not retry recorded failures; exit code still says some failed
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 3
    assert "0 parts computed, 4 reused" in capsys.readouterr().out


def test_info_lists_failures_and_sizes(tmp_path, capsys):
    manifest = _bad_corpus(tmp_path)
    cache = tmp_path / "cache"
    for extra in (["-u", "fbank"], ["-u", "random:tiny-wavlm", "--layers", "0,2"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["extract", str(manifest), "--cache", str(cache), "--no-progress", *extra])
        assert exit_info.value.code == 3
    capsys.readouterr()
    main(["info", str(cache), "--errors", "20"])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["store", "status", "done", "failed", "layers", "dim", "frames/s",
                                "dtype", "size"]  # fmt: skip
    fbank = next(line for line in lines if line.startswith("fbank "))
    assert fbank.split()[:8] == ["fbank", "complete", "5", "10", "all", "1", "80", "100"]
    wavlm = next(line for line in lines if line.startswith("random-tiny-wavlm "))
    assert wavlm.split()[:6] == ["random-tiny-wavlm", "complete", "5", "10", "2/3:", "0,2"]
    assert "untrained" in out and "failed    truncated:" in out
    main(["info", str(cache), "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["fbank", "random-tiny-wavlm"]
    assert all(r["bytes"] > 0 for r in rows)
    # --cache as in every other command; sizes in MiB, as the report prints them
    main(["info", "--cache", str(cache), "--errors", "20"])
    assert capsys.readouterr().out == out
    size = fbank.split("MiB")[0].split()[-1]
    assert f"{size} MiB" == f"{rows[0]['bytes'] / 2**20:.1f} MiB"
