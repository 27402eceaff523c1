"""Probability calibration on the last slice of a training window, and its out-of-sample check.

Each walk-forward training window is split in time (:func:`calibration_split`): the model is
fitted on the earlier rows, the calibrator on the last ``fraction`` of the window's usable
rows (the *calibration slice*), and the rows whose label window reaches into the slice are
purged from the fitting part (``i + horizon >= slice start``), so the calibrator sees labels
the model was not fitted on. The test fold is never touched: the window itself ends before it
(purged by :mod:`perpbot.ml.validation`).

Calibration itself is scikit-learn's :class:`~sklearn.calibration.CalibratedClassifierCV` on
a :class:`~sklearn.frozen.FrozenEstimator` (the fitted model is not refitted):
``"isotonic"`` (isotonic regression, one-vs-rest per class, rows renormalised to sum to 1) or
``"sigmoid"`` (Platt scaling), or ``"none"``. A model fitted on the two meta-labels only
(-1 "skip", +1 "take") is calibrated as a binary classifier on its p_up column.

Out of sample, :func:`reliability` gives, per class, the reliability curve of
:func:`sklearn.calibration.calibration_curve` (``n_bins`` equal-width bins) with the row
count of each bin and the expected calibration error
``ECE = sum_b (n_b / n) * |mean(y in b) - mean(p in b)|`` (Naeini, Cooper & Hauskrecht, 2015;
Guo et al., 2017), computed on the walk-forward test folds only.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = ["CALIBRATION_METHODS", "MIN_CALIBRATION_ROWS", "calibration_split", "CalibratedModel",
           "fit_calibrated", "expected_calibration_error", "reliability"]

CALIBRATION_METHODS = ("isotonic", "sigmoid", "none")
#: Fewer labelled rows in the calibration slice than this (or a single class): no calibration.
MIN_CALIBRATION_ROWS = 50
_CLASSES = np.array([-1, 0, 1])
_CLASS_NAMES = ("down", "flat", "up")


def calibration_split(rows, fraction: float, purge: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a training window's usable rows into (model-fit rows, calibration rows).

    The calibration slice is the last ``round(fraction * len(rows))`` rows (in time order);
    the fit rows are the earlier rows ``i`` with ``i + purge < slice start`` (the label of row
    ``i`` looks at bars ``i+1 .. i+purge``, so none of them sees a bar of the slice).

    Args:
        rows: int64 row indices (positions), strictly increasing.
        fraction: share of the rows in the calibration slice, in [0, 1); 0 = no slice.
        purge: label horizon in bars (>= 0).

    Returns:
        (fit_rows, calibration_rows), int64 arrays; ``calibration_rows`` is empty when
        ``fraction`` is 0 (and then ``fit_rows`` is ``rows``).

    Raises:
        ValueError: fraction outside [0, 1), negative purge, unsorted rows, or no fit row left.
    """
    idx = np.asarray(rows, dtype=np.int64)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"calibration fraction must be in [0, 1), got {fraction}")
    if purge < 0:
        raise ValueError(f"purge must be >= 0, got {purge}")
    if idx.size > 1 and not (np.diff(idx) > 0).all():
        raise ValueError("rows must be strictly increasing")
    k = int(round(fraction * idx.size))
    if k == 0:
        return idx, idx[:0]
    cal = idx[-k:]
    fit = idx[: idx.size - k]
    fit = fit[fit + purge < cal[0]]
    if fit.size == 0:
        raise ValueError(f"no model-fit rows left before the calibration slice ({idx.size} rows, fraction "
                         f"{fraction}, purge {purge})")
    return fit, cal


class _BinaryView(ClassifierMixin, BaseEstimator):
    """A fitted (p_down, p_flat, p_up) model seen as a binary classifier of -1 vs +1 (meta-labels)."""

    def __init__(self, model=None):
        self.model = model
        self.classes_ = np.array([-1, 1])

    def fit(self, X, y):  # pragma: no cover - never refitted (frozen)
        return self

    def predict_proba(self, X) -> np.ndarray:
        p = np.asarray(self.model.predict_proba(X), dtype=np.float64)[:, [0, 2]]
        total = p.sum(axis=1, keepdims=True)
        return np.divide(p, total, out=np.full_like(p, 0.5), where=total > 0)

    def predict(self, X):  # the cross_val_predict of CalibratedClassifierCV checks it exists
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class CalibratedModel:
    """A fitted model and its calibrator; ``predict_proba(X)`` -> float64 (n, 3) (p_down, p_flat, p_up).

    ``calibrator`` is None when calibration was off or skipped (``info["skipped"]`` says why);
    ``predict_raw`` gives the uncalibrated probabilities of ``model``.
    """

    def __init__(self, model, calibrator=None, binary: bool = False, info: dict | None = None) -> None:
        self.model, self.calibrator, self.binary, self.info = model, calibrator, binary, dict(info or {})

    def predict_raw(self, X) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X), dtype=np.float64)

    def predict_proba(self, X) -> np.ndarray:
        if self.calibrator is None:
            return self.predict_raw(X)
        p = np.asarray(self.calibrator.predict_proba(X), dtype=np.float64)
        if self.binary:
            out = np.zeros((p.shape[0], 3))
            out[:, 0], out[:, 2] = p[:, 0], p[:, 1]
            return out
        return p


def fit_calibrated(model, X_cal: np.ndarray, y_cal: np.ndarray, method: str, binary: bool = False) -> CalibratedModel:
    """Calibrate the fitted ``model`` on the calibration slice (``X_cal``, labels ``y_cal`` in -1/0/+1).

    Args:
        model: fitted estimator with ``predict_proba(X) -> (n, 3)`` and ``classes_`` (-1, 0, 1).
        X_cal: float64 (m, k) features of the calibration slice; y_cal: (m,) labels.
        method: one of :data:`CALIBRATION_METHODS`.
        binary: the model was fitted on labels -1/+1 only (meta-labels): calibrate p_up as a
            binary probability, p_flat stays 0.

    Returns:
        :class:`CalibratedModel` (uncalibrated, with ``info["skipped"]``, when ``method`` is
        "none", the slice has fewer than :data:`MIN_CALIBRATION_ROWS` rows or lacks one of the
        classes: -1, 0, +1, or -1, +1 when ``binary``).

    Raises:
        ValueError: unknown method.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {method!r}; choose one of {', '.join(CALIBRATION_METHODS)}")
    y = np.asarray(y_cal, dtype=np.float64)
    info = {"method": method, "n_calibration": int(y.size)}
    if method == "none":
        return CalibratedModel(model, None, binary, {**info, "skipped": "calibration off"})
    needed = {-1.0, 1.0} if binary else {-1.0, 0.0, 1.0}
    present = set(np.unique(y).tolist())
    if y.size < MIN_CALIBRATION_ROWS or not needed <= present:
        return CalibratedModel(model, None, binary, {
            **info, "skipped": f"{y.size} rows with classes {sorted(int(c) for c in present)} in the calibration "
                               f"slice (needs >= {MIN_CALIBRATION_ROWS} rows and every class the model predicts)"})
    import warnings

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import KFold

    base = _BinaryView(model) if binary else model
    # a frozen estimator is never refitted: the folds only split the prediction of the slice, so
    # any split gives the same calibrator (unstratified: no warnings about rare classes)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="sklearn.model_selection")
        cal = CalibratedClassifierCV(FrozenEstimator(base), method=method, cv=KFold(2)).fit(X_cal, y.astype(np.int64))
    return CalibratedModel(model, cal, binary, info)


def expected_calibration_error(y_true, prob, n_bins: int = 10) -> float:
    """ECE of binary outcomes ``y_true`` (0/1 or bool, (n,)) against probabilities ``prob`` ((n,) in [0, 1]).

    ``sum_b (n_b / n) * |mean(y in b) - mean(p in b)|`` over ``n_bins`` equal-width bins of
    [0, 1] (the bins of :func:`sklearn.calibration.calibration_curve`). NaN when n = 0.

    Raises:
        ValueError: shapes differ, n_bins < 1 or probabilities outside [0, 1].
    """
    return _curve(y_true, prob, n_bins)["ece"]


def _curve(y_true, prob, n_bins: int) -> dict:
    from sklearn.calibration import calibration_curve

    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"y_true and prob must be 1-D of the same length, got {y.shape} and {p.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if y.size == 0:
        return {"prob_pred": [], "prob_true": [], "count": [], "ece": float("nan"), "n": 0}
    if p.min() < 0 or p.max() > 1:
        raise ValueError("probabilities must be in [0, 1]")
    yb = (y > 0).astype(np.int64)
    if np.unique(yb).size == 1:  # calibration_curve needs a positive label it can infer
        prob_true, prob_pred = _curve_one_label(yb, p, n_bins)
    else:
        prob_true, prob_pred = calibration_curve(yb, p, n_bins=n_bins, strategy="uniform")
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(bins[1:-1], p), minlength=n_bins)
    counts = counts[counts > 0]
    ece = float(np.sum(counts / y.size * np.abs(prob_true - prob_pred)))
    return {"prob_pred": prob_pred.tolist(), "prob_true": prob_true.tolist(), "count": counts.tolist(),
            "ece": ece, "n": int(y.size)}


def _curve_one_label(yb: np.ndarray, p: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(bins[1:-1], p)
    total = np.bincount(ids, minlength=n_bins)
    nz = total > 0
    return (np.bincount(ids, weights=yb, minlength=n_bins)[nz] / total[nz],
            np.bincount(ids, weights=p, minlength=n_bins)[nz] / total[nz])


def reliability(y_true, proba, n_bins: int = 10, classes=("down", "flat", "up")) -> dict:
    """Per-class reliability curves and ECE of (p_down, p_flat, p_up) against labels -1/0/+1.

    Rows where the label or any probability is NaN are ignored (so on walk-forward output
    only the test folds count).

    Args:
        y_true: (n,) labels -1/0/+1 or NaN. proba: (n, 3) probabilities.
        n_bins: equal-width bins of [0, 1].
        classes: which of "down", "flat", "up" to report (a meta model: ("up",)).

    Returns:
        ``{class: {"prob_pred": [...], "prob_true": [...], "count": [...], "ece": float, "n": int}}``
        (lists over the non-empty bins, ascending).
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or y.shape != (p.shape[0],):
        raise ValueError(f"need y_true (n,) and proba (n, 3), got {y.shape} and {p.shape}")
    ok = np.isfinite(y) & np.isfinite(p).all(axis=1)
    out = {}
    for name in classes:
        k = _CLASS_NAMES.index(name)
        out[name] = _curve((y[ok] == _CLASSES[k]).astype(np.float64), np.clip(p[ok, k], 0.0, 1.0), n_bins)
    return out
