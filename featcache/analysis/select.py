"""Upstream selection: rank subsets of models for a task before paying for fusion runs.

Shih & Harwath found that *which* models are fused matters more than *how*: a supervised model
plus a self-supervised one helped, two similar self-supervised models barely did. The score below
turns that into a ranking from two cheap measurements on the cache:

- strength ``s_i``: the cross-validated probe score of model i's best layer (accuracy for
  classification, R^2 for regression; see :mod:`featcache.analysis.probe`);
- complementarity ``c_ij = 1 - CKA(best layer of i, best layer of j)``: linear CKA over the same
  utterances' pooled features (see :mod:`featcache.analysis.cka`); 0 for identical geometry,
  towards 1 for unrelated representations.

For a subset S of models::

    strength(S)        = mean of s_i over i in S
    complementarity(S) = mean of c_ij over pairs i < j in S   (0 when |S| = 1)
    score(S)           = strength(S) + weight * complementarity(S)

The mean (not the max) of the strengths makes a weak model cost something; the weight (default
0.25) says how many points of probe score one unit of complementarity is worth. It is a heuristic:
``featcache select --validate N`` trains short fusions of the best and worst subsets and reports
the Spearman rank correlation between this score and the measured dev score.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

# a scikit-learn estimator (get_params/set_params/clone), so this module imports scikit-learn;
# nothing in featcache imports it at package import time
from sklearn.base import BaseEstimator

__all__ = ["SubsetScore", "UpstreamSelector", "rank_subsets", "spearman", "DEFAULT_WEIGHT"]

DEFAULT_WEIGHT = 0.25


@dataclass(frozen=True)
class SubsetScore:
    """One candidate subset and the components of its score."""

    upstreams: tuple[str, ...]
    score: float
    strength: float
    complementarity: float
    best_layers: tuple[int, ...]  # model layer index of each upstream's best layer

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "upstreams": list(self.upstreams),
            "best_layers": list(self.best_layers),
        }


def rank_subsets(
    strength: Mapping[str, float],
    similarity: Mapping[tuple[str, str], float],
    *,
    best_layers: Mapping[str, int] | None = None,
    max_models: int = 2,
    weight: float = DEFAULT_WEIGHT,
) -> list[SubsetScore]:
    """Score every subset of 1..``max_models`` upstreams and sort them, best first.

    Parameters
    ----------
    strength : mapping upstream -> float
        Best-layer probe score of each upstream.
    similarity : mapping (upstream, upstream) -> float
        CKA between two upstreams' best layers; either key order is accepted.
    best_layers : mapping upstream -> int, optional
        Reported in the result only.
    max_models : int
        Largest subset size.
    weight : float
        Weight of complementarity in the score.

    Returns
    -------
    list of SubsetScore
        Sorted by score (ties: fewer models first, then names).
    """
    _check_options(max_models, weight)
    names = list(strength)
    out = []
    for size in range(1, min(max_models, len(names)) + 1):
        for subset in itertools.combinations(names, size):
            s = float(np.mean([strength[u] for u in subset]))
            pairs = list(itertools.combinations(subset, 2))
            c = (
                float(np.mean([1.0 - _lookup(similarity, a, b) for a, b in pairs]))
                if pairs
                else 0.0
            )
            layers = tuple(int((best_layers or {}).get(u, -1)) for u in subset)
            out.append(SubsetScore(subset, s + weight * c, s, c, layers))
    return sorted(out, key=lambda r: (-r.score, len(r.upstreams), r.upstreams))


def _check_options(max_models, weight) -> None:
    """Refuse a subset size below 1 or a negative weight (which would reward redundancy)."""
    from featcache.errors import ConfigError

    if isinstance(max_models, bool) or not isinstance(max_models, int | np.integer):
        raise ConfigError(f"--max-models must be an integer, got {max_models!r}")
    if max_models < 1:
        raise ConfigError(f"--max-models must be at least 1, got {max_models}")
    if not np.isfinite(weight) or weight < 0:
        raise ConfigError(
            f"--weight must be a number >= 0 (0 ranks by strength alone), got {weight}"
        )


def _lookup(similarity, a, b) -> float:
    if (a, b) in similarity:
        return float(similarity[(a, b)])
    return float(similarity[(b, a)])


class UpstreamSelector(BaseEstimator):
    """Rank upstream subsets from pooled features and labels; a scikit-learn estimator.

    Parameters are stored as given (``get_params``, ``set_params`` and ``sklearn.base.clone``
    work as for any estimator); ``fit`` learns the attributes ending in ``_``. Its input is a
    mapping of per-upstream features rather than one array, so it is not meant for
    ``Pipeline`` or ``cross_val_score``.

    Parameters
    ----------
    task : {"classify", "regress"}
    max_models : int
        Largest subset size to rank.
    weight : float
        Weight of complementarity in the score (see the module docstring).
    cv : int
        Cross-validation folds of the probes.
    random_state : int
        Seed of the folds.

    Attributes
    ----------
    probe_scores_ : dict upstream -> list of dict
        :func:`~featcache.analysis.probe.probe_layers` output per upstream.
    best_layers_ : dict upstream -> int
        Position of each upstream's best layer in its features' layer axis.
    strength_ : dict upstream -> float
    similarity_ : dict (upstream, upstream) -> float
        CKA between best layers, every pair.
    ranking_ : list of SubsetScore
        Best first.

    Examples
    --------
    >>> sel = UpstreamSelector(max_models=2)                               # doctest: +SKIP
    >>> sel.fit({"wavlm": reader_a.pooled(), "whisper": reader_b.pooled()}, labels)  # doctest: +SKIP
    >>> sel.ranking_[0].upstreams                                         # doctest: +SKIP
    ('wavlm', 'whisper')
    """

    def __init__(self, task="classify", max_models=2, weight=DEFAULT_WEIGHT, cv=5, random_state=0):
        self.task = task
        self.max_models = max_models
        self.weight = weight
        self.cv = cv
        self.random_state = random_state

    def fit(self, features: Mapping[str, np.ndarray], y, probe_scores=None):
        """Probe every upstream's layers, measure best-layer CKA, rank subsets.

        Parameters
        ----------
        features : mapping upstream -> array (N, L, D)
            Pooled features of the same N utterances, in the same order, for every upstream.
        y : array_like (N,)
        probe_scores : mapping upstream -> list of dict, optional
            Reuse probe results computed earlier (same utterances and labels).
        """
        from featcache.analysis.cka import linear_cka
        from featcache.analysis.probe import probe_layers

        _check_options(self.max_models, self.weight)  # before the probes, which take a while
        self.probe_scores_ = {}
        for name, X in features.items():
            if probe_scores is not None and name in probe_scores:
                self.probe_scores_[name] = list(probe_scores[name])
            else:
                self.probe_scores_[name] = probe_layers(
                    X, y, task=self.task, cv=self.cv, random_state=self.random_state
                )
        self.best_layers_ = {
            name: max(rows, key=lambda r: r["mean"])["layer"]
            for name, rows in self.probe_scores_.items()
        }
        self.strength_ = {
            name: max(r["mean"] for r in rows) for name, rows in self.probe_scores_.items()
        }
        self.similarity_ = {}
        for a, b in itertools.combinations(features, 2):
            xa = np.asarray(features[a])[:, self.best_layers_[a], :]  # (N, Da)
            xb = np.asarray(features[b])[:, self.best_layers_[b], :]  # (N, Db)
            self.similarity_[(a, b)] = linear_cka(xa, xb)
        self.ranking_ = rank_subsets(
            self.strength_,
            self.similarity_,
            best_layers=self.best_layers_,
            max_models=self.max_models,
            weight=self.weight,
        )
        return self


def spearman(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Spearman rank correlation (ties get average ranks); NaN with fewer than 2 points."""
    from scipy.stats import rankdata

    if len(predicted) < 2:
        return float("nan")
    a = rankdata(predicted)
    b = rankdata(measured)
    if a.std() == 0 or b.std() == 0:
        return float("nan")  # a constant ranking correlates with nothing
    return float(np.corrcoef(a, b)[0, 1])
