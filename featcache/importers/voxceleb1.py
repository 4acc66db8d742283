"""VoxCeleb1 for speaker identification (SUPERB SID).

Layout (``SRC`` = the VoxCeleb1 folder)::

    iden_split.txt                          lines "S id10001/1zcIwhmdeo4/00001.wav", S = 1 train, 2 dev, 3 test
    wav/<speaker>/<youtube-id>/<n>.wav      (the dev and test zips both unpack into wav/)

``iden_split.txt`` is the official identification split (robots.ox.ac.uk/~vgg/data/voxceleb/meta/);
pass ``split_file`` when it lives elsewhere. Audio is looked for under ``SRC/wav``, ``SRC/dev/wav``,
``SRC/test/wav``, ``SRC/vox1_dev_wav/wav``, ``SRC/vox1_test_wav/wav`` and ``SRC`` itself. ``id`` is
``<speaker>-<youtube-id>-<n>``; fields: ``speaker`` (1,251 classes in full), ``video``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featcache.errors import ManifestError
from featcache.importers.common import IdSet, located, read_lines, require_dir

SPLITS = {"1": "train", "2": "dev", "3": "test"}
_WAV_ROOTS = ("wav", "dev/wav", "test/wav", "vox1_dev_wav/wav", "vox1_test_wav/wav", ".")


def read_voxceleb1(
    src: str | Path, *, split_file: str | Path | None = None
) -> list[dict[str, Any]]:
    """Records of every utterance listed in ``iden_split.txt``, in its order.

    Parameters
    ----------
    src : path
        The VoxCeleb1 folder.
    split_file : path, optional
        ``iden_split.txt`` when it is not in ``src``.
    """
    src = require_dir(Path(src), "the VoxCeleb1 folder (holding wav/ and iden_split.txt)").resolve()
    table = Path(split_file) if split_file else src / "iden_split.txt"
    if not table.is_file():
        raise ManifestError(
            f"{table}: not found; download iden_split.txt from "
            "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/meta/iden_split.txt into "
            f"{src} or pass --split-file"
        )
    roots = [src / r for r in _WAV_ROOTS if (src / r).is_dir()]
    ids = IdSet()
    records = []
    for line, text in read_lines(table):
        parts = text.split()
        if len(parts) != 2 or parts[0] not in SPLITS or parts[1].count("/") != 2:
            raise located(table, line, "expected 'S SPEAKER/VIDEO/N.wav' with S in 1, 2, 3")
        relative = Path(parts[1])
        audio = next((r / relative for r in roots if (r / relative).is_file()), None)
        if audio is None:
            raise located(table, line, f"{relative} not found under {src}/wav")
        speaker, video = relative.parts[0], relative.parts[1]
        utt_id = f"{speaker}-{video}-{relative.stem}"
        ids.add(utt_id, table, line)
        records.append(
            {
                "id": utt_id,
                "audio": str(audio),
                "split": SPLITS[parts[0]],
                "speaker": speaker,
                "video": video,
            }
        )
    return records
