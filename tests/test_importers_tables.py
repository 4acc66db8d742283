"""CSV tables and folders of audio files import into manifests that validate; the CLI writes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from featcache.errors import ConfigError, ManifestError
from featcache.importers import IMPORTERS, import_manifest
from featcache.manifest import Manifest, validate_manifest


def _wav(path: Path, seconds: float, sr: int = 16000, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    sf.write(path, 0.1 * rng.standard_normal(int(seconds * sr)).astype("float32"), sr, format=fmt)
    return path


def test_csv_with_extra_columns_and_numeric_segments(tmp_path: Path):
    a = _wav(tmp_path / "corpus" / "a.wav", 2.0)
    _wav(tmp_path / "corpus" / "b.flac", 1.0)
    table = tmp_path / "corpus" / "list.csv"
    table.write_text(
        "id,audio,start,duration,speaker,emotion,split\n"
        f"u1,{a},0.5,1.0,s1,hap,train\n"
        "u2,b.flac,,,s2,sad,\n"
        '\n"u3","a.wav","1.5","","s1","neu, calm","test"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out" / "m.jsonl"
    manifest = import_manifest("csv", table, out, split="dev")
    assert validate_manifest(out) == []
    assert manifest.ids() == ["u1", "u2", "u3"]
    assert [(u.start, u.duration) for u in manifest] == [(0.5, 1.0), (0.0, None), (1.5, None)]
    assert manifest.labels("split") == ["train", "dev", "test"]  # --split fills empty cells only
    assert manifest.labels("emotion") == ["hap", "sad", "neu, calm"]
    assert manifest["u2"].audio == str((tmp_path / "corpus" / "b.flac").resolve())
    first = json.loads(out.read_text().splitlines()[0])
    assert first["start"] == 0.5 and isinstance(first["duration"], float)


def test_tsv_and_path_alias(tmp_path: Path):
    _wav(tmp_path / "x.wav", 0.5)
    table = tmp_path / "list.tsv"
    table.write_text("path\tid\tlabel\nx.wav\tx\tyes\n", encoding="utf-8")
    manifest = import_manifest("csv", table, tmp_path / "m.jsonl")
    assert manifest.labels("label") == ["yes"]
    assert json.loads((tmp_path / "m.jsonl").read_text())["audio"] == "x.wav"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,speaker\nu1,s1\n", r"list\.csv:1: header lacks column\(s\) audio"),
        (
            "id,audio,duration\nu1,a.wav,1\nu2,a.wav,long\n",
            r"list\.csv:3: duration must be a number",
        ),
        ("id,audio\nu1,a.wav\nu2\n", r"list\.csv:3: 1 cells, but the header has 2"),
        (
            "id,audio\nu1,a.wav\nu1,a.wav\n",
            r"list\.csv:3: duplicate utterance id 'u1' \(first at .*list\.csv:2\)",
        ),
        ("id,audio,channel\nu1,a.wav,left\n", r"list\.csv:2: channel must be a 0-based integer"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path: Path, text: str, message: str):
    (tmp_path / "list.csv").write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError, match=message):
        import_manifest("csv", tmp_path / "list.csv", tmp_path / "m.jsonl")


def test_folder_recursive_ids_and_parent_labels(tmp_path: Path):
    root = tmp_path / "clips"
    _wav(root / "alice" / "001.wav", 0.5)
    _wav(root / "alice" / "002.flac", 0.5)
    _wav(root / "bob" / "take1" / "003.ogg", 0.5, fmt="OGG")
    _wav(root / "bob" / "take1" / ".hidden.wav", 0.5)
    (root / "notes.txt").write_text("not audio")
    out = tmp_path / "m.jsonl"
    manifest = import_manifest("dir", root, out, label_from="parent", label_field="speaker")
    assert validate_manifest(out) == []
    assert manifest.ids() == ["alice_001", "alice_002", "bob_take1_003"]
    assert manifest.labels("speaker") == ["alice", "alice", "take1"]
    top = import_manifest("dir", root, tmp_path / "top.jsonl", label_from="top")
    assert top.labels("label") == ["alice", "alice", "bob"]
    assert json.loads(out.read_text().splitlines()[0])["audio"] == "clips/alice/001.wav"


def test_folder_split_auto_and_collisions(tmp_path: Path):
    root = tmp_path / "data"
    _wav(root / "train" / "a.wav", 0.3)
    _wav(root / "test" / "b.wav", 0.3)
    manifest = import_manifest("dir", root, tmp_path / "m.jsonl", split="auto")
    assert manifest.labels("split") == ["test", "train"]
    _wav(root / "train" / "a.flac", 0.3)
    with pytest.raises(
        ManifestError, match=r"a\.wav: duplicate utterance id 'train_a' \(first at .*a\.flac\)"
    ):
        import_manifest("dir", root, tmp_path / "m2.jsonl")
    with pytest.raises(ConfigError, match="does not take --language"):
        import_manifest("dir", root, tmp_path / "m3.jsonl", language="eng")


def test_folder_labels_skip_the_split_folder(tmp_path: Path):
    root = tmp_path / "data"
    _wav(root / "train" / "alice" / "a.wav", 0.3)
    _wav(root / "dev" / "bob" / "take1" / "b.wav", 0.3)
    for label_from, labels in (("top", ["bob", "alice"]), ("parent", ["take1", "alice"])):
        m = import_manifest("dir", root, tmp_path / f"{label_from}.jsonl", split="auto",
                            label_from=label_from, label_field="speaker")  # fmt: skip
        assert m.labels("split") == ["dev", "train"]
        assert m.labels("speaker") == labels
    _wav(root / "test" / "c.wav", 0.3)  # in the split folder, no speaker folder
    with pytest.raises(ManifestError, match="no labelled folder below .* and its split folder"):
        import_manifest("dir", root, tmp_path / "x.jsonl", split="auto", label_from="top")


def test_validate_reports_split_values_the_stages_do_not_use(tmp_path: Path):
    _wav(tmp_path / "a.wav", 0.3)
    lines = [{"id": "a", "audio": "a.wav", "split": s} for s in ("train", "valid", "heldout")]
    for i, rec in enumerate(lines):
        rec["id"] = f"u{i}"
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    problems = validate_manifest(tmp_path / "m.jsonl")
    assert [(p.line, p.utt_id) for p in problems] == [(2, "u1"), (3, "u2")]
    assert "split 'valid' is not one of train/dev/test" in problems[0].message
    assert "rename it 'dev'" in problems[0].message
    assert "use one of train, dev, test" in problems[1].message


def test_cli_import_prints_count_and_errors_in_one_line(tmp_path: Path, capsys):
    from featcache.cli.main import main

    _wav(tmp_path / "clips" / "s1" / "a.wav", 0.3)
    _wav(tmp_path / "clips" / "s2" / "b.wav", 0.3)
    out = tmp_path / "m.jsonl"
    args = ["--label-from", "parent", "--split", "train"]
    main(["manifest", "import", "dir", str(tmp_path / "clips"), str(out), *args])
    assert "wrote 2 utterances" in capsys.readouterr().out
    assert Manifest.load(out).labels("label") == ["s1", "s2"]
    (tmp_path / "bad.csv").write_text("id,audio\nu1\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["manifest", "import", "csv", str(tmp_path / "bad.csv"), str(tmp_path / "x.jsonl")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "bad.csv:2:" in err and "\n" not in err


def test_registry_lists_every_importer():
    assert sorted(IMPORTERS) == sorted(
        ["kaldi", "lhotse", "csv", "dir", "iemocap", "librispeech", "voxceleb1", "mlsuperb"]
    )


EXAMPLES = Path(__file__).resolve().parents[1] / "data_manifests" / "examples"


def test_shipped_examples_validate_and_importers_agree(tmp_path: Path):
    assert validate_manifest(EXAMPLES / "manifest.jsonl") == []
    reference = Manifest.load(EXAMPLES / "manifest.jsonl")
    kaldi = import_manifest("kaldi", EXAMPLES / "kaldi", tmp_path / "kaldi.jsonl")
    table = import_manifest("csv", EXAMPLES / "example.csv", tmp_path / "csv.jsonl")
    for manifest, out in ((kaldi, "kaldi.jsonl"), (table, "csv.jsonl")):
        assert validate_manifest(tmp_path / out) == []
        for field in ("id", "audio", "start", "duration", "speaker", "text"):
            assert manifest.labels(field) == reference.labels(field), field
    assert table.labels("split") == reference.labels("split")


def test_csv_delimiter_option_and_hint(tmp_path: Path, capsys):
    from featcache.cli.main import main

    wav = _wav(tmp_path / "a.wav", 0.3)
    table = tmp_path / "semi.csv"
    table.write_text(f"id;audio;emotion\nu1;{wav};happy\n")
    with pytest.raises(ManifestError, match=r"pass --delimiter ';'"):
        import_manifest("csv", table, tmp_path / "x.jsonl")
    out = tmp_path / "m.jsonl"
    main(["manifest", "import", "csv", str(table), str(out), "--delimiter", ";"])
    assert "wrote 1 utterances" in capsys.readouterr().out
    assert Manifest.load(out).labels("emotion") == ["happy"]
    tabs = tmp_path / "tabs.csv"
    tabs.write_text(f"id\taudio\nu1\t{wav}\n")
    assert import_manifest("csv", tabs, out, delimiter="\\t").ids() == ["u1"]
    with pytest.raises(ConfigError, match="one character"):
        import_manifest("csv", table, out, delimiter=";;")
