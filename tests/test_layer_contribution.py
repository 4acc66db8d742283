"""Layer contribution: the dev-score drop when one input layer is zeroed, from a run's checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from featcache.pipelines.contribution import layer_contribution
from featcache.pipelines.train import load_run_for_scoring, train
from featcache.testing.planted import PLANTED_BEST_LAYERS, write_planted_cache
from featcache.train.config import TrainConfig


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """hconv and ws runs on ssl-a alone: 5 layers, the speaker planted in layer 3 only."""
    root = tmp_path_factory.mktemp("contribution")
    cache = write_planted_cache(root / "cache", utterances=60)
    out = {}
    for interface in ("hconv", "ws"):
        out[interface] = root / interface
        train(TrainConfig(cache=str(cache), out=str(out[interface]), upstreams=["ssl-a"],
                          interface=interface, epochs=8, num_workers=0, device="cpu",
                          progress=False), log=lambda line: None)  # fmt: skip
    return out


@pytest.mark.parametrize("interface", ["hconv", "ws"])
def test_the_planted_layer_contributes_most(runs, interface):
    result = layer_contribution(runs[interface])
    rows = result["layers"]["ssl-a"]
    assert [r["layer"] for r in rows] == [0, 1, 2, 3, 4]
    drops = np.array([r["drop"] for r in rows])
    planted = PLANTED_BEST_LAYERS["ssl-a"]
    assert result["metric"] == "accuracy" and result["baseline"] >= 0.9
    assert int(np.argmax(drops)) == planted
    others = np.delete(drops, planted)
    assert drops[planted] > 2 * others.max()  # far above the unplanted layers
    # not the kernel-coverage pattern of HConv's first conv over 5 layers (1:2:2:1:1), which
    # peaks at layers 1 and 2 whatever was learned
    assert drops[planted] > drops[1] and drops[planted] > drops[2]


def test_each_drop_equals_a_direct_rescore_with_that_layer_zeroed(runs):
    import torch

    result = layer_contribution(runs["hconv"])
    cached = json.loads((runs["hconv"] / "layer_contribution_dev.json").read_text())
    assert cached == result  # the second call reads the cached file
    trainer, parts = load_run_for_scoring(runs["hconv"], "dev", log=lambda line: None)
    model = parts["model"]
    forward = model.forward

    def zero_layer_3(features, mask):  # the direct computation: zero after normalisation
        features = model.normalize(features, mask)
        features = [x.clone() for x in features]
        features[0][3] = 0.0
        return model.head(model.interface(features), mask)

    model.forward = zero_layer_3
    with torch.no_grad():
        direct = trainer.evaluate("dev")["accuracy"]
    model.forward = forward
    assert result["layers"]["ssl-a"][3]["score"] == pytest.approx(direct)
    assert result["layers"]["ssl-a"][3]["drop"] == pytest.approx(result["baseline"] - direct)
