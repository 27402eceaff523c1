"""Walk-forward training: one model per fold, out-of-sample probabilities, and a final model.

For each fold of :func:`perpbot.ml.validation.walk_forward_splits` (purge = label
horizon) a fresh model from :func:`perpbot.ml.models.make_model` is fitted on the
fold's usable training rows and predicts its test window. Concatenated, the test
windows give out-of-sample probabilities for every row after the first training
window. A final model fitted on every usable row serves live trading after the data ends.

A row is *usable for training* when all its features are finite and its label is
not NaN; it is *usable for prediction* when all its features are finite (its label
may be NaN, e.g. the last ``horizon`` rows).

With ``calibration`` ("isotonic" / "sigmoid"), each training window (and the final model's
data) is split by :func:`perpbot.ml.calibration.calibration_split`: the model is fitted on
the earlier rows, purged by the horizon from the calibration slice (the last
``calibration_fraction`` of the window's usable rows), on which the calibrator is fitted; the
test fold is never part of it. The fold's model is then a
:class:`perpbot.ml.calibration.CalibratedModel`, and ``extra["oos_proba_raw"]`` holds the
uncalibrated out-of-sample probabilities beside the calibrated ``oos_proba``.
``extra["model_plugin"]`` records a model plug-in's source (:func:`perpbot.ml.model_plugins.plugin_record`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from joblib import Parallel, delayed

from perpbot.ml.models import effective_params, make_model
from perpbot.ml.validation import walk_forward_splits

__all__ = ["FoldModel", "WalkForwardResult", "walk_forward_train", "default_fold_sizes",
           "feature_matrix", "timestamps_ns", "infer_bar_interval"]

DEFAULT_TRAIN_DAYS = 30
DEFAULT_TEST_DAYS = 14


@dataclass
class FoldModel:
    """A model fitted for one walk-forward fold; it is out of sample on ``[test_start_time, test_end_time)`` (UTC)."""

    model: Any
    test_start_time: pd.Timestamp
    test_end_time: pd.Timestamp
    train_start_time: pd.Timestamp | None = None  # first training row (inclusive)
    train_end_time: pd.Timestamp | None = None    # last training row (inclusive, before purging gap)
    n_train: int = 0
    n_test: int = 0
    n_calibration: int = 0                                   # rows of the calibration slice (in n_train)
    calibration_start_time: pd.Timestamp | None = None        # first row of the calibration slice
    fit_end_time: pd.Timestamp | None = None                  # last row the model itself was fitted on


@dataclass
class WalkForwardResult:
    """Output of :func:`walk_forward_train`.

    ``params`` are the effective model parameters (defaults updated with the overrides).
    ``oos_proba``: float64 (n, 3) (p_down, p_flat, p_up), NaN where no fold covers the
    row or its features are not finite. ``final_model`` was fitted on every usable row
    (``n_train_final`` of them, from ``train_start_time`` to ``train_end_time``, UTC,
    inclusive) and is out of sample from ``data_end_time`` (last timestamp + one bar) on.
    """

    model_name: str
    params: dict
    feature_names: list[str]
    folds: list[FoldModel]
    oos_proba: np.ndarray
    final_model: Any
    train_start_time: pd.Timestamp
    train_end_time: pd.Timestamp
    data_end_time: pd.Timestamp
    bar_interval: pd.Timedelta
    horizon: int
    embargo: int
    train_size: int
    test_size: int
    expanding: bool
    n_train_final: int
    extra: dict = field(default_factory=dict)

    @property
    def oos_mask(self) -> np.ndarray:
        """Boolean (n,): rows with an out-of-sample prediction."""
        return np.isfinite(self.oos_proba).all(axis=1)


def timestamps_ns(timestamps) -> np.ndarray:
    """tz-aware timestamps (Series / DatetimeIndex / array) -> int64 ns since the epoch, UTC.

    Raises:
        ValueError: naive (tz-less) or missing (NaT) timestamps.
    """
    idx = pd.DatetimeIndex(timestamps)
    if idx.tz is None:
        raise ValueError("timestamps must be tz-aware (UTC), got naive timestamps")
    if idx.hasnans:
        raise ValueError("timestamps contain NaT")
    return idx.tz_convert("UTC").as_unit("ns").asi8


def infer_bar_interval(ns: np.ndarray) -> pd.Timedelta:
    """Median spacing of int64-ns timestamps (the bar length). Raises ValueError with < 2 rows."""
    if ns.shape[0] < 2:
        raise ValueError("need at least 2 timestamps to infer the bar interval")
    return pd.Timedelta(int(np.median(np.diff(ns))), unit="ns")


def default_fold_sizes(bar_interval: pd.Timedelta) -> tuple[int, int]:
    """(train_size, test_size) in bars: 30 days of training, 14 days per test window (8640, 4032 for 5m)."""
    day = pd.Timedelta(days=1)
    return int(DEFAULT_TRAIN_DAYS * day / bar_interval), int(DEFAULT_TEST_DAYS * day / bar_interval)


def feature_matrix(X: pd.DataFrame, feature_names=None) -> tuple[np.ndarray, np.ndarray]:
    """Features as a C-contiguous float64 (n, k) array in ``feature_names`` order, and the
    boolean (n,) mask of rows whose features are all finite (inf counts as missing).

    Raises:
        ValueError: X is not a DataFrame, has no columns, lacks a named column or has a
            non-numeric column.
    """
    if not isinstance(X, pd.DataFrame):
        raise ValueError(f"X must be a pandas DataFrame of features, got {type(X).__name__}")
    names = list(X.columns) if feature_names is None else list(feature_names)
    nonstr = [c for c in names if not isinstance(c, str)]
    if nonstr:
        raise ValueError(f"feature names must be strings, got {nonstr[:5]}")
    if not names:
        raise ValueError("X has no feature columns")
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise ValueError(f"X lacks feature columns {missing}")
    dtypes = X.dtypes  # one lookup, not one Series per column (this runs once per live cycle)
    bad = [c for c in names if not pd.api.types.is_numeric_dtype(dtypes[c]) or pd.api.types.is_bool_dtype(dtypes[c])]
    if bad:
        raise ValueError(f"feature columns must be numeric (float64), got non-numeric {bad}")
    arr = np.ascontiguousarray(X[names].to_numpy(dtype=np.float64, na_value=np.nan))
    return arr, np.isfinite(arr).all(axis=1)


def _fit_task(k: int, model_name: str, params, random_state: int, X_train: np.ndarray, y_train: np.ndarray,
              X_test: np.ndarray, calibration: str = "none", X_cal: np.ndarray | None = None,
              y_cal: np.ndarray | None = None) -> tuple[int, Any, np.ndarray, np.ndarray]:
    """Fit one single-threaded model (and its calibrator on the calibration slice) and predict its
    test rows, calibrated and raw (in a worker process when n_jobs > 1)."""
    model = make_model(model_name, params, n_jobs=1, random_state=random_state).fit(X_train, y_train)
    if calibration != "none":
        from perpbot.ml.calibration import fit_calibrated

        binary = bool(np.isin(y_train, (-1.0, 1.0)).all())  # meta-labels: -1 skip / +1 take
        model = fit_calibrated(model, X_cal, y_cal, calibration, binary=binary)
    if not X_test.shape[0]:
        return k, model, np.empty((0, 3)), np.empty((0, 3))
    proba = model.predict_proba(X_test)
    raw = model.predict_raw(X_test) if calibration != "none" else proba
    return k, model, proba, raw


def walk_forward_train(X: pd.DataFrame, y: np.ndarray, timestamps: pd.Series, *, model_name: str = "lightgbm",
                       params: dict | None = None, train_size: int | None = None, test_size: int | None = None,
                       horizon: int, embargo: int = 0, expanding: bool = True, n_jobs: int = 2,
                       random_state: int = 42, calibration: str = "none", calibration_fraction: float = 0.2,
                       progress: Callable[[int, int], None] | None = None) -> WalkForwardResult:
    """Walk-forward fit and out-of-sample prediction (see the module docstring).

    Args:
        X: (n, k) float64 features, one row per bar, NaN rows allowed (not usable).
        y: (n,) labels -1/0/+1 as float64, NaN = no label (e.g. from
            :func:`perpbot.ml.labels.triple_barrier_labels`).
        timestamps: (n,) tz-aware UTC bar open times, strictly increasing.
        model_name, params, random_state: see :func:`perpbot.ml.models.make_model`.
        n_jobs: worker processes; the folds (and the final model) are fitted in parallel,
            each model single-threaded, so results do not depend on ``n_jobs``. The
            fitted models are built with ``n_jobs=1`` (set ``model.set_params`` to change).
        train_size, test_size: fold sizes in bars; ``None`` = 30 days / 14 days of bars.
            The first training window starts at the first row with finite features.
        horizon: label horizon in bars = purge.
        embargo: see :mod:`perpbot.ml.validation` (no effect on forward folds).
        expanding: expanding (default) or rolling training window.
        calibration: "none" (default), "isotonic" or "sigmoid" (see the module docstring).
        calibration_fraction: share of each window's usable training rows in the calibration
            slice, in (0, 1) (used only with calibration).
        progress: optional ``callable(done, total)`` called after each fit (total = folds + 1).

    Returns:
        :class:`WalkForwardResult`.

    Raises:
        ValueError: mismatched lengths, bad labels, naive/unsorted timestamps, too few
            rows for one fold or a fold without usable training rows.
    """
    make_model(model_name, params)  # fail fast on an unknown name or bad parameters
    from perpbot.ml.model_plugins import plugin_record

    plugin = plugin_record(model_name)  # the plug-in's source as this training loaded it ({} for a built-in)
    from perpbot.ml.calibration import CALIBRATION_METHODS, calibration_split

    if calibration not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {calibration!r}; choose one of {', '.join(CALIBRATION_METHODS)}")
    cal_fraction = float(calibration_fraction) if calibration != "none" else 0.0
    if calibration != "none" and not 0.0 < cal_fraction < 1.0:
        raise ValueError(f"calibration_fraction must be in (0, 1), got {calibration_fraction}")
    feats, usable_pred = feature_matrix(X)
    n = feats.shape[0]
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) like X, got {y.shape}")
    finite_y = np.isfinite(y)
    if not np.isin(y[finite_y], (-1.0, 0.0, 1.0)).all():
        raise ValueError("y must hold -1, 0, +1 or NaN")
    ns = timestamps_ns(timestamps)
    if ns.shape[0] != n:
        raise ValueError(f"timestamps must have {n} rows like X, got {ns.shape[0]}")
    if n > 1 and not (np.diff(ns) > 0).all():
        raise ValueError("timestamps must be strictly increasing")
    bar = infer_bar_interval(ns)
    d_train, d_test = default_fold_sizes(bar)
    train_size = d_train if train_size is None else train_size
    test_size = d_test if test_size is None else test_size
    usable_train = usable_pred & finite_y
    if not usable_pred.any():
        raise ValueError("no row of X has all features finite")
    start = int(np.argmax(usable_pred))
    folds = walk_forward_splits(n, train_size=train_size, test_size=test_size, purge=horizon,
                                embargo=embargo, expanding=expanding, start=start)
    ts = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")
    end_ns = int(ns[-1]) + bar.value
    data_end = pd.Timestamp(end_ns, unit="ns", tz="UTC")
    total = len(folds) + 1
    if progress is not None:
        progress(0, total)

    # One task per fold plus the final model; tasks are independent, so with n_jobs > 1 they
    # run in n_jobs worker processes (one thread each), largest training set first.
    tasks = []
    for k, fold in enumerate(folds):
        rows = fold.train_idx[usable_train[fold.train_idx]]
        if rows.size == 0:
            raise ValueError(f"walk-forward fold {k} (test from {ts[fold.test_start]}) has no usable training rows")
        tasks.append((k, rows, fold.test_idx[usable_pred[fold.test_idx]]))
    all_rows = np.flatnonzero(usable_train)
    tasks.append((len(folds), all_rows, all_rows[:0]))
    splits = {k: calibration_split(rows, cal_fraction, horizon) for k, rows, _ in tasks}

    def job_args(k, test):
        fit, cal = splits[k]
        return (k, model_name, params, random_state, feats[fit], y[fit], feats[test], calibration, feats[cal], y[cal])

    outputs: dict[int, tuple[Any, np.ndarray, np.ndarray]] = {}
    if n_jobs > 1 and len(tasks) > 1:
        order = sorted(tasks, key=lambda task: -task[1].size)
        runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        jobs = (delayed(_fit_task)(*job_args(k, test)) for k, rows, test in order)
        for done, (k, model, proba, raw) in enumerate(runner(jobs), start=1):
            outputs[k] = (model, proba, raw)
            if progress is not None:
                progress(done, total)
    else:
        for done, (k, _rows, test) in enumerate(tasks, start=1):
            outputs[k] = _fit_task(*job_args(k, test))[1:]
            if progress is not None:
                progress(done, total)

    oos = np.full((n, 3), np.nan)
    oos_raw = np.full((n, 3), np.nan)
    fold_models: list[FoldModel] = []
    for (k, rows, test_rows), fold in zip(tasks, folds):
        model, proba, raw = outputs[k]
        oos[test_rows] = proba
        oos_raw[test_rows] = raw
        test_end_time = ts[fold.test_end] if fold.test_end < n else data_end
        fit, cal = splits[k]
        fold_models.append(FoldModel(model=model, test_start_time=ts[fold.test_start], test_end_time=test_end_time,
                                     train_start_time=ts[rows[0]], train_end_time=ts[rows[-1]],
                                     n_train=int(rows.size), n_test=int(test_rows.size),
                                     n_calibration=int(cal.size),
                                     calibration_start_time=ts[cal[0]] if cal.size else None,
                                     fit_end_time=ts[fit[-1]]))
    final = outputs[len(folds)][0]
    extra = {"calibration": calibration, "calibration_fraction": cal_fraction, "model_plugin": plugin}
    if calibration != "none":
        extra["oos_proba_raw"] = oos_raw
        final_cal = splits[len(folds)][1]
        extra["final_calibration_start_time"] = ts[final_cal[0]] if final_cal.size else None
    return WalkForwardResult(
        model_name=model_name, params=effective_params(model_name, params), feature_names=[str(c) for c in X.columns],
        folds=fold_models, oos_proba=oos, final_model=final,
        train_start_time=ts[all_rows[0]], train_end_time=ts[all_rows[-1]], data_end_time=data_end,
        bar_interval=bar, horizon=int(horizon), embargo=int(embargo), train_size=int(train_size),
        test_size=int(test_size), expanding=bool(expanding), n_train_final=int(all_rows.size), extra=extra)
