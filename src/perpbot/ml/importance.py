"""Permutation importance of the features on the walk-forward TEST folds.

For each fold, its own model scores the rows of its test window (out of sample: the model never
saw them) before and after one feature's column is shuffled
(:func:`sklearn.inspection.permutation_importance`; Breiman 2001, Fisher, Rudin & Dominici
2019). The score is the mean log-likelihood of the true label (higher is better), so a
feature's importance is the rise in log-loss when its link to the label is broken, in nats per
row: > 0 helps, ~0 unused, < 0 hurts out of sample. Per fold at most ``rows`` evenly spaced
test rows with a label and finite features are scored (speed); the result is the mean and the
standard deviation over folds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["fold_permutation_importance", "log_likelihood_score"]

_EPS = 1e-12


class _Scored:
    """A fitted fold model as sklearn's permutation_importance wants it (it checks for ``fit``;
    nothing is refitted)."""

    def __init__(self, model) -> None:
        self.model = model

    def fit(self, X, y):  # pragma: no cover - never called by permutation_importance
        return self

    def predict_proba(self, X):
        return self.model.predict_proba(X)


def log_likelihood_score(estimator, X: np.ndarray, y: np.ndarray) -> float:
    """Mean ln p(true label) of ``estimator.predict_proba(X)`` ((n, 3) p_down, p_flat, p_up);
    labels -1/0/+1 pick columns 0/1/2. A scorer for sklearn (higher is better)."""
    p = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    col = np.asarray(y, dtype=np.int64) + 1
    return float(np.mean(np.log(np.clip(p[np.arange(len(col)), col], _EPS, 1.0))))


def fold_permutation_importance(folds, X: pd.DataFrame, y, timestamps, *, rows: int = 1000, repeats: int = 2,
                                seed: int = 0, n_jobs: int = 1) -> dict:
    """Permutation importance of each column of ``X`` on the folds' test windows.

    Args:
        folds: :class:`perpbot.ml.train.FoldModel` list (model, test_start_time, test_end_time).
        X: (n, k) features (the model's columns, in its order); y: (n,) labels -1/0/+1/NaN;
        timestamps: (n,) tz-aware bar open times.
        rows: most test rows scored per fold (0: nothing is computed, ``{}`` returned).
        repeats: shuffles per feature and fold; seed: their random state; n_jobs: sklearn's.

    Returns:
        JSON-able dict: ``method``, ``unit``, ``n_folds``, ``rows_per_fold``, ``repeats`` and
        ``features`` = {name: {"mean": nats, "std": across folds}} sorted by mean, descending
        (empty when no fold has a scored row).
    """
    from sklearn.inspection import permutation_importance

    if rows <= 0 or not folds:
        return {}
    names = [str(c) for c in X.columns]
    feats = X.to_numpy(dtype=np.float64)
    yv = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(feats).all(axis=1) & np.isfinite(yv)
    ts = pd.DatetimeIndex(timestamps)
    per_fold = []
    for k, f in enumerate(folds):
        idx = np.flatnonzero(ok & (ts >= f.test_start_time) & (ts < f.test_end_time))
        if idx.size < 10:
            continue
        if idx.size > rows:
            idx = idx[np.linspace(0, idx.size - 1, rows).round().astype(np.int64)]
        res = permutation_importance(_Scored(f.model), feats[idx], yv[idx].astype(np.int64), scoring=log_likelihood_score,
                                     n_repeats=repeats, random_state=seed + k, n_jobs=n_jobs)
        per_fold.append(res.importances_mean)
    if not per_fold:
        return {}
    arr = np.vstack(per_fold)
    mean, std = arr.mean(axis=0), arr.std(axis=0, ddof=0)
    order = np.argsort(-mean, kind="stable")
    return {"method": "permutation importance on the walk-forward test folds (sklearn.inspection)",
            "unit": "rise in log-loss, nats per row", "n_folds": len(per_fold), "rows_per_fold": int(rows),
            "repeats": int(repeats),
            "features": {names[i]: {"mean": float(mean[i]), "std": float(std[i])} for i in order}}
