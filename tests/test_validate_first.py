"""Every command checks all its inputs before it loads a model, computes or writes anything."""

from __future__ import annotations

import pytest

from featcache.cli.main import main
from featcache.testing.corpus import make_tone_corpus
from featcache.testing.models import save_tiny_checkpoint


def _fails(args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code != 0
    return capsys.readouterr().err


def _corrupt_checkpoint(folder):
    """A tiny-HuBERT folder whose config is fine but whose weights cannot be loaded."""
    save_tiny_checkpoint(folder, "hubert")
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    return folder


def test_a_typo_in_the_second_upstream_fails_before_any_store_is_written(tmp_path, capsys):
    manifest = make_tone_corpus(tmp_path / "corpus", utterances=4).path
    cache = tmp_path / "cache"
    err = _fails(["extract", str(manifest), "-u", "fbank", "-u", "hubrt-base", "--cache",
                  str(cache), "--no-progress"], capsys)  # fmt: skip
    assert "unknown upstream 'hubrt-base'" in err and "hubert-base" in err  # suggests the name
    assert not cache.exists()  # fbank was not extracted first, no folder left behind


def test_bad_layers_fail_before_the_model_is_loaded(tmp_path, capsys):
    manifest = make_tone_corpus(tmp_path / "corpus", utterances=4).path
    folder = _corrupt_checkpoint(tmp_path / "model")  # loading it would fail on the weights
    cache = tmp_path / "cache"
    err = _fails(["extract", str(manifest), "-u", str(folder), "--layers", "0-x",
                  "--cache", str(cache), "--no-progress"], capsys)  # fmt: skip
    assert "--layers '0-x': cannot parse" in err
    assert not cache.exists()
    # out of range is known from config.json alone (tiny HuBERT: 2 layers + embedding = 3)
    err = _fails(["extract", str(manifest), "-u", str(folder), "--layers", "0-5",
                  "--cache", str(cache), "--no-progress"], capsys)  # fmt: skip
    assert "layers 0-2" in err and "weights" not in err
    assert not cache.exists()


def test_a_folder_without_weights_fails_before_any_store_is_written(tmp_path, capsys):
    manifest = make_tone_corpus(tmp_path / "corpus", utterances=4).path
    folder = save_tiny_checkpoint(tmp_path / "model", "hubert")
    (folder / "model.safetensors").unlink()
    cache = tmp_path / "cache"
    err = _fails(["extract", str(manifest), "-u", "fbank", "-u", str(folder), "--cache",
                  str(cache), "--no-progress"], capsys)  # fmt: skip
    assert "no weights" in err
    assert not cache.exists()


def test_an_uncached_hub_model_fails_offline_before_any_store_is_written(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))  # an empty hub cache
    manifest = make_tone_corpus(tmp_path / "corpus", utterances=4).path
    cache = tmp_path / "cache"
    err = _fails(["extract", str(manifest), "-u", "fbank", "-u", "hubert-base", "--cache",
                  str(cache), "--no-progress"], capsys)  # fmt: skip
    assert "not in the local model-hub cache" in err
    assert not cache.exists()


@pytest.mark.parametrize(
    "args",
    [["-u", "fbank", "-u", "hubrt-base"], ["-u", "random:tiny-hubert", "--layers", "0-x"]],
)
def test_a_typo_fails_before_torch_is_imported(tmp_path, args):
    """The cheapest checks run first: no model library is even imported for a typo."""
    import subprocess
    import sys

    manifest = make_tone_corpus(tmp_path / "corpus", utterances=2).path
    code = (
        "import sys\nfrom featcache.cli.main import main\ntry:\n"
        f"    main(['extract', {str(manifest)!r}, '--cache', {str(tmp_path / 'c')!r}, *{args!r}])\n"
        "except SystemExit as e:\n    print('exit', e.code, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "exit 1 False", done.stdout + done.stderr
    assert not (tmp_path / "c").exists()
