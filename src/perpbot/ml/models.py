"""Model factory: scikit-learn estimators that predict (p_down, p_flat, p_up) from features.

Every model is ``Pipeline([StandardScaler, ThreeClassClassifier(classifier)])``:
the scaler is fitted on the training rows only (inside ``fit``), and
:class:`ThreeClassClassifier` maps the labels -1/0/+1 to contiguous codes for the
underlying library (XGBoost needs 0..k-1) and always returns a (n, 3) float64
probability array with columns (p_down, p_flat, p_up), filling with 0 the column of
a class absent from the training window (a single-class window predicts that class
with probability 1).

Models: ``logreg`` (multinomial logistic regression), ``random_forest``, ``xgboost``,
``lightgbm`` (default), ``ensemble`` (soft-voting average of the four) and ``lstm``
(a sequence model over the last bars, :mod:`perpbot.ml.lstm`; needs ``perpbot[deep]``), and any
model plug-in — an entry point of ``perpbot.models`` or a file ``FILE.py[:Factory]`` whose
estimator follows the scikit-learn protocol (:mod:`perpbot.ml.model_plugins`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["MODEL_NAMES", "DEFAULT_MODEL", "CLASSES", "ThreeClassClassifier", "make_model", "default_params",
           "effective_params"]

MODEL_NAMES = ("logreg", "random_forest", "xgboost", "lightgbm", "ensemble", "lstm")
DEFAULT_MODEL = "lightgbm"
#: Label values in the order of the probability columns (p_down, p_flat, p_up).
CLASSES = np.array([-1, 0, 1], dtype=np.int64)
_BASE = ("logreg", "random_forest", "xgboost", "lightgbm")


def default_params(name: str) -> dict[str, Any]:
    """Default constructor arguments of model ``name`` (small, fast, deterministic).

    For ``ensemble`` the dict maps each member name to its defaults.

    For a plug-in: its estimator's ``get_params(deep=False)`` (:func:`perpbot.ml.model_plugins.plugin_defaults`).

    Raises:
        ValueError: unknown model name.
    """
    _check_name(name)
    if name not in MODEL_NAMES:
        from perpbot.ml.model_plugins import plugin_defaults

        return plugin_defaults(name)
    if name == "logreg":
        return {"C": 1.0, "max_iter": 1000}
    # Tree models are small and strongly regularised: 5m returns are mostly noise, and on a
    # 50-feature stand-in frame over SOLUSDT 5m (walk-forward) the larger LightGBM setting
    # (200 trees, 31 leaves, 100-row leaves) lost to the base rate in out-of-sample log loss
    # while this one beat it, at half the fit time.
    if name == "random_forest":
        return {"n_estimators": 100, "max_depth": 8, "min_samples_leaf": 100, "max_features": "sqrt",
                "max_samples": 0.25}
    if name == "xgboost":
        return {"n_estimators": 100, "max_depth": 4, "learning_rate": 0.05, "min_child_weight": 10.0,
                "subsample": 0.8, "colsample_bytree": 0.5, "tree_method": "hist", "max_bin": 63, "verbosity": 0}
    if name == "lightgbm":
        # column-wise histograms + half the features per tree: ~25 % faster than row-wise on
        # ~50 features (measured); bagging made it slower here.
        return {"n_estimators": 100, "num_leaves": 15, "learning_rate": 0.05, "min_child_samples": 300,
                "colsample_bytree": 0.5, "reg_lambda": 1.0, "max_bin": 63, "verbose": -1,
                "deterministic": True, "force_col_wise": True}
    if name == "lstm":
        from perpbot.ml.lstm import LSTMClassifier  # no torch import: only the parameters

        return {k: v for k, v in LSTMClassifier().get_params().items() if k not in ("n_threads", "random_state")}
    return {m: default_params(m) for m in _BASE}


def effective_params(name: str, params: dict | None = None) -> dict[str, Any]:
    """:func:`default_params` of ``name`` updated with ``params`` (per member for ``ensemble``).

    This is what :func:`make_model` passes to the classifier(s) and what a model bundle records.

    Raises:
        ValueError: unknown model name, or ensemble params not keyed by member name / "weights".
    """
    if name not in MODEL_NAMES:
        from perpbot.ml.model_plugins import plugin_defaults

        return plugin_defaults(name, params)
    base = default_params(name)
    params = dict(params or {})
    if name != "ensemble":
        return {**base, **params}
    unknown = set(params) - set(_BASE) - {"weights"}
    if unknown:
        raise ValueError(f"ensemble params must be keyed by member name ({', '.join(_BASE)}) "
                         f"or 'weights', got {sorted(unknown)}")
    merged: dict[str, Any] = {m: {**base[m], **(params.get(m) or {})} for m in _BASE}
    merged["weights"] = params.get("weights")
    return merged


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        from perpbot.ml.model_plugins import load_factory

        load_factory(name)  # an unknown name: the one line listing built-ins and installed plug-ins


def _make_classifier(name: str, merged: dict[str, Any], n_jobs: int, random_state: int):
    try:
        if name == "logreg":
            # estimators are imported when built, so loading a saved model imports only what it holds
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(random_state=random_state, **merged)
        if name == "random_forest":
            from sklearn.ensemble import RandomForestClassifier

            return RandomForestClassifier(random_state=random_state, n_jobs=n_jobs, **merged)
        if name == "xgboost":
            from perpbot.extras import require

            XGBClassifier = require("xgboost", f"the {name} model").XGBClassifier
            return XGBClassifier(random_state=random_state, n_jobs=n_jobs, **merged)
        if name == "lstm":
            from perpbot.ml.lstm import LSTMClassifier, require_torch

            require_torch()  # fail fast with the one-line install hint
            return LSTMClassifier(random_state=random_state, n_threads=n_jobs, **merged)
        from lightgbm import LGBMClassifier

        return LGBMClassifier(random_state=random_state, n_jobs=n_jobs, **merged)
    except TypeError as exc:
        raise ValueError(f"bad parameters for model {name!r}: {exc}") from exc


class ThreeClassClassifier(ClassifierMixin, BaseEstimator):
    """Wrap a classifier so it trains on labels -1/0/+1 and predicts (p_down, p_flat, p_up).

    ``fit(X, y)``: ``y`` holds -1, 0, +1 (ints or floats; NaN is an error). The classes
    present are mapped to 0..k-1 before fitting a clone of ``estimator``, whose ``classes_``
    must then be ``[0 .. k-1]`` (ValueError otherwise).
    ``predict_proba(X)`` returns float64 (n, 3) in the order of :data:`CLASSES` (ValueError when
    the estimator's probabilities are not (n, k)).
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, y):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or y.shape[0] != np.shape(X)[0]:
            raise ValueError(f"y must be 1-D with one label per row of X, got shape {y.shape} for X {np.shape(X)}")
        if y.size == 0:
            raise ValueError("cannot fit a model on zero rows")
        if not np.isin(y, CLASSES).all():
            bad = np.unique(y[~np.isin(y, CLASSES)])[:5]
            raise ValueError(f"labels must be -1, 0 or +1 (no NaN), got {bad.tolist()}")
        present = np.unique(y).astype(np.int64)
        self.present_columns_ = present + 1  # column of each present class in (down, flat, up)
        self.classes_ = CLASSES.copy()
        if present.size == 1:
            self.estimator_ = None
        else:
            codes = np.searchsorted(present, y.astype(np.int64))
            self.estimator_ = clone(self.estimator).fit(X, codes)
            fitted = getattr(self.estimator_, "classes_", None)
            if fitted is None or not np.array_equal(np.asarray(fitted), np.arange(present.size)):
                raise ValueError(f"{type(self.estimator_).__name__}.fit must set classes_ to the class codes it was "
                                 f"given, sorted ({list(range(present.size))}), got {fitted!r}")
        return self

    def predict_proba(self, X) -> np.ndarray:
        n = np.shape(X)[0]
        out = np.zeros((n, 3), dtype=np.float64)
        if self.estimator_ is None:
            out[:, self.present_columns_[0]] = 1.0
        else:
            p = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
            if p.shape != (n, self.present_columns_.size):
                raise ValueError(f"{type(self.estimator_).__name__}.predict_proba returned shape {p.shape}, expected "
                                 f"({n}, {self.present_columns_.size}): one column per class of classes_")
            out[:, self.present_columns_] = p
            out /= out.sum(axis=1, keepdims=True)  # XGBoost returns float32 rows summing to 1 +- 1e-7
        return out

    def predict(self, X) -> np.ndarray:
        return CLASSES[np.argmax(self.predict_proba(X), axis=1)]


def make_model(name: str = DEFAULT_MODEL, params: dict | None = None, n_jobs: int = 2,
               random_state: int = 42) -> Pipeline:
    """A fresh, unfitted model: ``Pipeline([("scaler", StandardScaler()), ("clf", ThreeClassClassifier(...))])``.

    Args:
        name: one of :data:`MODEL_NAMES`, or a model plug-in (:mod:`perpbot.ml.model_plugins`:
            an entry-point name or ``FILE.py[:Factory]``; its estimator is
            :func:`~perpbot.ml.model_plugins.build_estimator` of ``params``).
        params: overrides of :func:`default_params` passed to the classifier's
            constructor; for ``ensemble`` a dict ``{member_name: {...}}`` plus an
            optional ``"weights"`` list (soft-voting weights in member order
            logreg, random_forest, xgboost, lightgbm).
        n_jobs: threads for the tree models.
        random_state: seed (all models are deterministic for a given seed and n_jobs).

    Returns:
        sklearn Pipeline with ``fit(X, y)`` (y in -1/0/+1) and ``predict_proba(X) -> (n, 3)``.

    Raises:
        ValueError: unknown name (the message lists the valid names and installed plug-ins), a
            parameter the classifier does not accept, or a plug-in that fails to load or does not
            follow the protocol.
    """
    if name not in MODEL_NAMES:
        from perpbot.ml.model_plugins import build_estimator

        clf = build_estimator(name, params, n_jobs=n_jobs, random_state=random_state)
        return Pipeline([("scaler", StandardScaler()), ("clf", ThreeClassClassifier(clf))])
    merged = effective_params(name, params)
    if name == "ensemble":
        members = [(m, _make_classifier(m, merged[m], n_jobs, random_state)) for m in _BASE]
        from sklearn.ensemble import VotingClassifier

        clf = VotingClassifier(members, voting="soft", weights=merged["weights"])
    else:
        clf = _make_classifier(name, merged, n_jobs, random_state)
    return Pipeline([("scaler", StandardScaler()), ("clf", ThreeClassClassifier(clf))])
