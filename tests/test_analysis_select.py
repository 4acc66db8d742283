"""Upstream selection: complementary models rank above redundant ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from featcache.analysis.select import UpstreamSelector, rank_subsets, spearman


def planted_upstreams(n=160, layers=3, dim=10, seed=0):
    """a and b: the same representation (b a rotation of a); c: equally strong, different geometry."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    a = rng.normal(size=(n, layers, dim))  # (N, L, D)
    a[:, 1] += rng.normal(scale=1.5, size=(4, dim))[y]
    b = a @ ortho_group.rvs(dim, random_state=1) + 0.01 * rng.normal(size=a.shape)
    c = rng.normal(size=(n, layers, dim))
    c[:, 2] += rng.normal(scale=1.5, size=(4, dim))[y]
    return {"a": a, "b": b, "c": c}, y


def test_complementary_pair_ranks_above_redundant_pair():
    features, y = planted_upstreams()
    sel = UpstreamSelector(max_models=2, cv=4).fit(features, y)
    assert sel.best_layers_ == {"a": 1, "b": 1, "c": 2}
    assert sel.similarity_[("a", "b")] > 0.95
    assert sel.similarity_[("a", "c")] < 0.6
    order = [r.upstreams for r in sel.ranking_]
    assert order.index(("a", "c")) < order.index(("a", "b"))
    assert order.index(("b", "c")) < order.index(("a", "b"))
    top = sel.ranking_[0]
    assert len(top.upstreams) == 2 and "c" in top.upstreams
    assert top.score == pytest.approx(top.strength + 0.25 * top.complementarity)


def test_rank_subsets_score_components():
    strength = {"x": 0.8, "y": 0.6, "z": 0.7}
    similarity = {("x", "y"): 0.2, ("x", "z"): 0.9, ("y", "z"): 0.5}
    ranking = rank_subsets(strength, similarity, max_models=3, weight=0.5)
    by_name = {r.upstreams: r for r in ranking}
    assert len(ranking) == 7
    assert by_name[("x",)].complementarity == 0.0
    assert by_name[("x", "y")].score == pytest.approx(0.7 + 0.5 * 0.8)
    assert by_name[("x", "y", "z")].complementarity == pytest.approx(np.mean([0.8, 0.1, 0.5]))
    assert [r.score for r in ranking] == sorted((r.score for r in ranking), reverse=True)
    assert len(rank_subsets(strength, similarity, max_models=1)) == 3


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_subset_size_below_one_and_negative_weight_are_user_errors():
    from featcache.errors import ConfigError

    strength = {"x": 0.8, "y": 0.6}
    similarity = {("x", "y"): 0.2}
    with pytest.raises(ConfigError, match="--max-models must be at least 1"):
        rank_subsets(strength, similarity, max_models=0)
    with pytest.raises(ConfigError, match="--weight must be a number >= 0"):
        rank_subsets(strength, similarity, weight=-1.0)
    features, y = planted_upstreams(n=40)
    with pytest.raises(ConfigError, match="--max-models"):  # refused before any probe runs
        UpstreamSelector(max_models=0).fit(features, y)


def test_selector_is_a_scikit_learn_estimator():
    from sklearn.base import clone

    features, y = planted_upstreams()
    sel = UpstreamSelector(max_models=2, cv=4, weight=0.5)
    twin = clone(sel)
    assert twin is not sel and twin.get_params() == sel.get_params()
    assert sel.get_params()["weight"] == 0.5
    # set_params takes effect: single models only, ranked by strength
    sel.set_params(weight=0.0, max_models=1).fit(features, y)
    assert [len(r.upstreams) for r in sel.ranking_] == [1, 1, 1]
    assert sel.ranking_[0].score == max(sel.strength_.values())
    assert "UpstreamSelector(" in repr(sel) and "weight=0.0" in repr(sel)
