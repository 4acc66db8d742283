"""A cache with planted structure, for tests and demos of the analysis stage.

Three stores over the same utterances, each utterance labelled with a ``speaker`` (3 classes):

- ``ssl-a`` (5 layers, 16 dims, 50 frames/s): the speaker is linearly decodable from layer 3 only;
- ``ssl-b`` (same shape): a rotation of ``ssl-a`` plus a little noise, i.e. the same model again;
- ``asr-c`` (4 layers, 12 dims, 100 frames/s): the speaker is in layer 2, in features unrelated to
  ``ssl-a``'s.

So a probe must find layers 3, 3, 2; CKA(ssl-a, ssl-b) is near 1 on matching layers; and a selector
must prefer ssl-a + asr-c (complementary) over ssl-a + ssl-b (redundant).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_planted_cache", "PLANTED_BEST_LAYERS"]

PLANTED_BEST_LAYERS = {"ssl-a": 3, "ssl-b": 3, "asr-c": 2}


def write_planted_cache(
    cache_dir, utterances: int = 24, seed: int = 0, format: str = "zarr"
) -> Path:
    """Write the three planted stores and a manifest into ``cache_dir``; return ``cache_dir``."""
    from featcache.manifest import Manifest
    from featcache.testing.caches import write_cache

    rng = np.random.default_rng(seed)
    cache_dir = Path(cache_dir)
    splits = ("train", "train", "train", "dev", "test")
    records = [
        {
            "id": f"utt{i:03d}",
            "audio": f"/nonexistent/utt{i:03d}.wav",  # the analysis stage never reads audio
            "speaker": f"spk{i % 3}",
            "loudness": float(i % 7) + 0.5,
            "split": splits[(i // 3) % 5],
        }
        for i in range(utterances)
    ]
    manifest = Manifest.from_records(records)
    centres_a = rng.normal(scale=2.0, size=(3, 16))
    centres_c = rng.normal(scale=2.0, size=(3, 12))
    mix_a = [rng.normal(size=(16, 16)) / 4 for _ in range(5)]
    mix_c = [rng.normal(size=(12, 12)) / 3.5 for _ in range(4)]
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    a, b, c = {}, {}, {}
    for i, rec in enumerate(records):
        speaker = i % 3
        t = int(rng.integers(20, 40))
        base = rng.normal(size=(t, 16))  # (T, D) content shared by all layers
        layers = []
        for layer in range(5):
            x = base @ mix_a[layer] + 0.3 * rng.normal(size=(t, 16))
            if layer == 3:
                x = x + centres_a[speaker]
            layers.append(x)
        a[rec["id"]] = np.stack(layers, axis=1)  # (T, 5, 16)
        b[rec["id"]] = a[rec["id"]] @ rotation + 0.02 * rng.normal(size=(t, 5, 16))
        base_c = rng.normal(size=(2 * t, 12))  # twice the frame rate, unrelated content
        layers = []
        for layer in range(4):
            x = base_c @ mix_c[layer] + 0.3 * rng.normal(size=(2 * t, 12))
            if layer == 2:
                x = x + centres_c[speaker]
            layers.append(x)
        c[rec["id"]] = np.stack(layers, axis=1)  # (2T, 4, 12)
    write_cache(cache_dir, "ssl-a", a, manifest, frame_rate=50.0, format=format)
    write_cache(cache_dir, "ssl-b", b, manifest, frame_rate=50.0, format=format)
    write_cache(cache_dir, "asr-c", c, manifest, frame_rate=100.0, format=format)
    return cache_dir
