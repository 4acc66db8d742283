"""Layer probes: scikit-learn conformance, and finding the layer that carries a planted signal."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from featcache.analysis.probe import (
    LayerProbeClassifier,
    LayerProbeRegressor,
    make_probe,
    probe_layers,
)
from featcache.errors import ConfigError


@parametrize_with_checks([LayerProbeClassifier(), LayerProbeRegressor()])
def test_probes_pass_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def planted(n=120, layers=5, dim=12, signal_layer=3, seed=0):
    """Noise in every layer; the class is linearly decodable from ``signal_layer`` only."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    X = rng.normal(size=(n, layers, dim))  # (N, L, D)
    centres = rng.normal(scale=2.0, size=(3, dim))
    X[:, signal_layer] += centres[y]
    return X, y


def test_probe_finds_the_layer_that_carries_a_planted_class_signal():
    X, y = planted(signal_layer=3)
    rows = probe_layers(X, y, task="classify", cv=4)
    scores = [r["mean"] for r in rows]
    assert int(np.argmax(scores)) == 3
    assert scores[3] > 0.9
    assert max(s for i, s in enumerate(scores) if i != 3) < 0.6  # chance is 1/3
    assert all(len(r["scores"]) == 4 and r["std"] >= 0 for r in rows)


def test_probe_finds_a_planted_regression_signal():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 4, 8))
    target = X[:, 1] @ rng.normal(size=8) + 0.1 * rng.normal(size=100)
    rows = probe_layers(X, target, task="regress", cv=5)
    assert [r["metric"] for r in rows] == ["r2"] * 4
    assert int(np.argmax([r["mean"] for r in rows])) == 1
    assert rows[1]["mean"] > 0.9


def test_layer_parameter_selects_the_layer_of_3d_input():
    X, y = planted(signal_layer=2)
    good = LayerProbeClassifier(layer=2, random_state=0).fit(X, y)
    assert good.n_features_in_ == 12 and set(good.classes_) == {0, 1, 2}
    assert good.score(X, y) > 0.95
    assert good.predict_proba(X[:5]).shape == (5, 3)
    with pytest.raises(ValueError, match="n_layers"):
        LayerProbeClassifier(layer=2).fit(X[:, 0], y)


def test_grouped_folds_keep_an_utterance_in_one_fold():
    X, y = planted(n=60)
    frames = np.repeat(X, 4, axis=0)  # 4 "frames" per utterance
    groups = np.repeat(np.arange(60), 4)
    rows = probe_layers(frames, np.repeat(y, 4), groups=groups, cv=3, layers=[3])
    assert rows[0]["layer"] == 3 and rows[0]["mean"] > 0.8


def test_bad_task_and_hopeless_labels_are_user_errors():
    X, y = planted()
    with pytest.raises(ConfigError, match="unknown probe task"):
        make_probe("cluster")
    with pytest.raises(ConfigError, match="single class"):
        probe_layers(X, np.zeros(len(y)), cv=3)
    with pytest.raises(ConfigError, match="fewer than 5 examples"):
        probe_layers(X[:7], y[:7], cv=5)


def test_too_few_examples_per_class_says_which_cv_works():
    X, y = planted()
    y3 = np.repeat(["a", "b", "c"], [3, 4, 5])
    with pytest.raises(ConfigError, match=r"2 of 3 classes .*'a': 3\); use --cv 3 or fewer"):
        probe_layers(X[:12], y3, cv=5)
    assert len(probe_layers(X[:12], y3, cv=3)) == X.shape[1]
    unique = np.array(["x", "x", "y", "z"] * 3 + ["once"])  # a transcript-like label
    with pytest.raises(ConfigError, match="at least 2 examples per class"):
        probe_layers(X[:13], unique, cv=2)
    with pytest.raises(ConfigError, match="--cv must be an integer of at least 2"):
        probe_layers(X, y, cv=1)


def test_layer_out_of_range_or_missing_says_how_many_layers_there_are():
    X, y = planted(layers=5)
    with pytest.raises(ValueError, match="layer=5 is out of range: X has 5 layers"):
        LayerProbeClassifier(layer=5).fit(X, y)
    with pytest.raises(ValueError, match="set layer="):
        LayerProbeRegressor().fit(X, y.astype(float))
    assert LayerProbeClassifier(layer=-1).fit(X, y).n_features_in_ == X.shape[2]


def test_frame_probes_count_utterances_not_frames_per_class():
    X, y = planted(n=60)
    frames = np.repeat(X, 4, axis=0)  # 4 "frames" per utterance: plenty of frames per class
    groups = np.repeat(np.arange(60), 4)
    few = np.isin(groups, np.flatnonzero(y == 0)[:2]) | (np.repeat(y, 4) != 0)  # class 0: 2 utts
    with pytest.raises(ConfigError, match=r"fewer than 3 utterances .*use --cv 2 or fewer"):
        probe_layers(frames[few], np.repeat(y, 4)[few], groups=groups[few], cv=3)
    with pytest.raises(ConfigError, match="frames of only 2 utterances for 3 folds"):
        probe_layers(frames[:8], np.arange(8.0), task="regress", groups=groups[:8], cv=3)
