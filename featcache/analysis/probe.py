"""Layer probes: scikit-learn estimators that read one layer of cached features.

A probe answers "how linearly decodable is this label from layer l?". It standardises the layer's
features and fits a logistic regression (classification) or ridge regression (regression).
:func:`probe_layers` scores every layer with cross-validation.

Examples
--------
From a notebook, on one upstream's store (``pooled()`` rows follow ``reader.utterances``)::

    import featcache
    from featcache.analysis.probe import LayerProbeClassifier, probe_layers
    from sklearn.model_selection import cross_val_score

    reader = featcache.open_cache("cache", upstream="wavlm-base-plus")
    manifest = reader.manifest()
    y = [manifest[u].get("speaker") for u in reader.utterances]
    X = reader.pooled()                                   # (N, L, D)
    rows = probe_layers(X, y, task="classify", cv=5)      # [{'layer': 0, 'mean': .., 'std': ..}, ..]
    best = max(rows, key=lambda r: r["mean"])["layer"]
    cross_val_score(LayerProbeClassifier(layer=best, C=0.5), X, y, cv=5)

The estimators work in scikit-learn pipelines, grid searches and ``cross_val_score`` like any other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# the estimators subclass scikit-learn's bases, so this module imports scikit-learn (~1 s); nothing
# in featcache imports it at package import time
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from featcache.analysis.registry import PROBE_TASKS

__all__ = ["LayerProbeClassifier", "LayerProbeRegressor", "make_probe", "probe_layers", "TASKS"]

# the probe tasks a probe fits ("auto" is resolved to one of them before)
TASKS = tuple(name for name in PROBE_TASKS if name != "auto")


def _select_layer(X, layer):
    """``X[:, layer, :]`` for (N, L, D) input; 2-D input passes through when ``layer`` is None."""
    if layer is None:
        if getattr(X, "ndim", None) == 3:
            raise ValueError(
                f"X has shape {X.shape} (n_samples, n_layers, n_features): set layer= to the "
                "position of the layer to probe, or pass 2-D features"
            )
        return X
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(
            f"layer={layer} needs X of shape (n_samples, n_layers, n_features), got {X.shape}"
        )
    if not -X.shape[1] <= layer < X.shape[1]:
        raise ValueError(f"layer={layer} is out of range: X has {X.shape[1]} layers (0 to "
                         f"{X.shape[1] - 1})")  # fmt: skip
    return X[:, layer, :]  # (N, D)


class _LayerProbe(BaseEstimator):
    """Shared fit/predict: standardise one layer, then a linear model."""

    def _make_model(self):
        raise NotImplementedError

    def fit(self, X, y):
        """Fit on ``X`` (n_samples, n_layers, n_features) with ``layer`` set, or 2-D with ``layer=None``."""
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.utils.validation import validate_data

        X = _select_layer(X, self.layer)
        X, y = validate_data(self, X, y, y_numeric=isinstance(self, RegressorMixin))
        self.pipeline_ = make_pipeline(StandardScaler(), self._make_model()).fit(X, y)
        return self

    def _transform_input(self, X):
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        return validate_data(self, _select_layer(X, self.layer), reset=False)

    def predict(self, X):
        """Predicted labels (classifier) or values (regressor)."""
        X = self._transform_input(X)
        return self.pipeline_.predict(X)


class LayerProbeClassifier(ClassifierMixin, _LayerProbe):
    """Standardisation + multinomial logistic regression on one layer.

    Parameters
    ----------
    layer : int or None
        Position of the layer in the input's second axis; None takes 2-D input as is.
    C : float
        Inverse L2 regularisation strength of the logistic regression.
    max_iter : int
        Solver iterations.
    random_state : int, RandomState or None
        Passed to the solver (it only matters for some solvers; kept for reproducibility).

    Attributes
    ----------
    classes_ : ndarray
        The labels seen in ``fit``.
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted scaler and logistic regression.
    n_iter_ : ndarray
        Solver iterations used.
    n_features_in_ : int
        Features of the probed layer.
    """

    def __init__(self, layer=None, C=1.0, max_iter=1000, random_state=None):
        self.layer = layer
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    def _make_model(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state)

    def fit(self, X, y):
        super().fit(X, y)
        self.classes_ = self.pipeline_.classes_
        self.n_iter_ = self.pipeline_[-1].n_iter_
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        X = self._transform_input(X)
        return self.pipeline_.predict_proba(X)

    def decision_function(self, X):
        """Logistic regression scores."""
        X = self._transform_input(X)
        return self.pipeline_.decision_function(X)


class LayerProbeRegressor(RegressorMixin, _LayerProbe):
    """Standardisation + ridge regression on one layer.

    Parameters
    ----------
    layer : int or None
        Position of the layer in the input's second axis; None takes 2-D input as is.
    alpha : float
        L2 regularisation strength of the ridge regression.
    random_state : int, RandomState or None
        Kept for API symmetry; ridge's default solver is deterministic.

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted scaler and ridge regression.
    n_features_in_ : int
        Features of the probed layer.
    """

    def __init__(self, layer=None, alpha=1.0, random_state=None):
        self.layer = layer
        self.alpha = alpha
        self.random_state = random_state

    def _make_model(self):
        from sklearn.linear_model import Ridge

        return Ridge(alpha=self.alpha, random_state=self.random_state)


def make_probe(task: str = "classify", **params):
    """A :class:`LayerProbeClassifier` (``task="classify"``) or :class:`LayerProbeRegressor`."""
    if task == "classify":
        return LayerProbeClassifier(**params)
    if task == "regress":
        return LayerProbeRegressor(**params)
    from featcache.errors import ConfigError

    raise ConfigError(f"unknown probe task {task!r}; use one of {', '.join(TASKS)}")


def probe_layers(
    X,
    y,
    *,
    task: str = "classify",
    cv: int = 5,
    groups=None,
    layers: Sequence[int] | None = None,
    scoring: str | None = None,
    random_state: int = 0,
    n_jobs: int | None = None,
    **params,
) -> list[dict]:
    """Cross-validated probe score for every layer of ``X``.

    Parameters
    ----------
    X : array_like, shape (N, L, D)
        One row per item (utterance, or frame), every layer.
    y : array_like, shape (N,)
        Labels (classify) or values (regress).
    task : {"classify", "regress"}
    cv : int
        Folds: stratified for classification, plain for regression, shuffled with
        ``random_state``; grouped by ``groups`` when given (frames of one utterance stay together).
    groups : array_like, shape (N,), optional
        Group of each row, e.g. its utterance id.
    layers : sequence of int, optional
        Positions to probe (default all).
    scoring : str, optional
        A scikit-learn scorer name; default accuracy (classify) or R^2 (regress).
    n_jobs : int, optional
        Folds fitted in parallel (scikit-learn's ``n_jobs``). Each fit runs its BLAS calls on one
        thread: probe problems are small, and on a busy machine threaded BLAS made them ~3x slower.
    **params
        Probe parameters (``C``, ``max_iter``, ``alpha``).

    Returns
    -------
    list of dict
        One per layer: ``layer`` (position), ``mean``, ``std`` (over folds), ``scores`` (per fold),
        ``metric``, ``n``.
    """
    from sklearn.model_selection import cross_val_score
    from threadpoolctl import threadpool_limits

    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 3 or X.shape[0] != y.shape[0]:
        raise ValueError(f"expected X (N, L, D) and y (N,), got {X.shape} and {y.shape}")
    splitter = _folds(task, cv, y, groups, random_state)
    metric = scoring or ("accuracy" if task == "classify" else "r2")
    results = []
    for layer in range(X.shape[1]) if layers is None else layers:
        probe = make_probe(task, random_state=random_state, **params)
        with threadpool_limits(limits=1, user_api="blas"):
            scores = cross_val_score(
                probe, X[:, layer, :], y, groups=groups, cv=splitter, scoring=metric, n_jobs=n_jobs
            )
        results.append(
            {
                "layer": int(layer),
                "mean": float(np.mean(scores)),
                "std": float(np.std(scores)),
                "scores": [float(s) for s in scores],
                "metric": metric,
                "n": int(len(y)),
            }
        )
    return results


def _folds(task, cv, y, groups, random_state):
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    from featcache.errors import ConfigError

    if task not in TASKS:
        raise ConfigError(f"unknown probe task {task!r}; use one of {', '.join(TASKS)}")
    if isinstance(cv, bool) or not isinstance(cv, int | np.integer) or cv < 2:
        raise ConfigError(f"--cv must be an integer of at least 2 folds, got {cv!r}")
    if task == "classify":
        classes, counts = np.unique(y, return_counts=True)
        if len(counts) < 2:
            raise ConfigError(
                f"the label has a single class ({str(classes[0])[:30]!r} for all {len(y)} "
                "examples): nothing to probe; pick another --label or widen --split"
            )
        if groups is not None:
            # folds keep an utterance whole, so what counts is utterances per class, not frames
            groups = np.asarray(groups)
            per_class = np.array([len(np.unique(groups[y == c])) for c in classes])
            if per_class.min() < cv:
                raise ConfigError(_rare_classes_message(classes, per_class, cv, "utterances"))
            return StratifiedGroupKFold(cv, shuffle=True, random_state=random_state)
        if counts.min() < cv:
            raise ConfigError(_rare_classes_message(classes, counts, cv))
        return StratifiedKFold(cv, shuffle=True, random_state=random_state)
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < cv:
            raise ConfigError(
                f"frames of only {n_groups} utterances for {cv} folds; use --cv {n_groups} or "
                "fewer, or raise --max-frames"
            )
        return GroupKFold(cv)
    return KFold(cv, shuffle=True, random_state=random_state)


def _rare_classes_message(classes, counts, cv, unit="examples") -> str:
    """Which classes are too small for ``cv`` stratified folds, and what the user can do."""
    rare = int((counts < cv).sum())
    example = str(classes[counts.argmin()])
    if len(example) > 30:
        example = example[:27] + "..."
    what = (
        f"{rare} of {len(counts)} classes have fewer than {cv} {unit} "
        f"(e.g. {example!r}: {counts.min()})"
    )
    wider = "widen --split" if unit == "examples" else "widen --split or raise --max-frames"
    if counts.min() < 2:
        return (
            f"{what}; a probe needs at least 2 {unit} per class: pick a label whose values "
            f"repeat (not a transcript or an id), or {wider}"
        )
    return f"{what}; use --cv {counts.min()} or fewer, or {wider}"
