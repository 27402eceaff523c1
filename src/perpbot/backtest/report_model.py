"""The model's part of the HTML report: calibration, feature importance, per-fold metrics, calls per month.

Everything is computed from what a backtest already holds: the AI run's out-of-sample
probabilities ``proba`` (float64 (n, 3): p_down, p_flat, p_up; NaN rows = no prediction), the
triple-barrier labels ``y`` of the backtested candles (-1/0/+1, NaN = no label), the candle open
times, the AI's signals and trades, and the model itself when given (a
:class:`perpbot.ml.registry.ModelBundle`, or the metadata dict written beside it by
``save_bundle``: its fold windows but no fitted models). :func:`model_panel` collects the parts
into a :class:`ModelPanel`; a part that cannot be computed is None and its reason is in
``ModelPanel.missing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["ModelPanel", "calibration_table", "calls_per_month", "feature_importance", "fold_metrics",
           "fold_windows", "model_panel", "permutation_table"]


@dataclass
class ModelPanel:
    """The model section of the report (see the module docstring). Frames are None when not available."""

    strategy: str
    version: str | None = None
    calibration: pd.DataFrame | None = None
    importance: pd.DataFrame | None = None
    importance_method: str = ""
    permutation: pd.DataFrame | None = None   # permutation importance on the test folds (model metadata)
    permutation_method: str = ""
    folds: pd.DataFrame | None = None
    calls: pd.DataFrame | None = None
    missing: dict[str, str] = field(default_factory=dict)


def calibration_table(y, proba, n_bins: int = 10) -> pd.DataFrame:
    """Reliability curve of the two directional classes: for "up" (label +1 vs p_up) and "down"
    (label -1 vs p_down), rows with a finite label and probabilities are cut into ``n_bins``
    equal-count bins of the predicted probability (``sklearn.calibration.calibration_curve``,
    strategy "quantile"; empty bins dropped).

    Returns columns class ("up"/"down"), predicted (mean probability in the bin), observed
    (share of the bin's rows with that label), count (rows in the bin). Raises ``ValueError``
    on mismatched shapes or when no row is usable.
    """
    from sklearn.calibration import calibration_curve

    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or y.shape != (p.shape[0],):
        raise ValueError(f"calibration: expected y (n,) and proba (n, 3), got {y.shape} and {p.shape}")
    ok = np.isfinite(y) & np.isfinite(p).all(axis=1)
    if not ok.any():
        raise ValueError("calibration: no row has both a label and a prediction")
    rows = []
    for cls, label, col in (("up", 1.0, 2), ("down", -1.0, 0)):
        truth = (y[ok] == label).astype(np.int64)
        prob = p[ok, col]
        observed, predicted = calibration_curve(truth, prob, n_bins=n_bins, strategy="quantile")
        # the bins calibration_curve uses: percentiles of prob, searchsorted on the inner edges
        edges = np.percentile(prob, np.linspace(0, 100, n_bins + 1))
        counts = np.bincount(np.searchsorted(edges[1:-1], prob), minlength=n_bins)
        counts = counts[counts > 0]
        for o, q, c in zip(observed, predicted, counts):
            rows.append({"class": cls, "predicted": float(q), "observed": float(o), "count": int(c)})
    return pd.DataFrame(rows, columns=["class", "predicted", "observed", "count"])


def _importance_of(estimator) -> tuple[np.ndarray | None, str]:
    """(importance vector normalised to sum 1, method) of one fitted estimator, or (None, "")."""
    est = estimator
    if hasattr(est, "steps"):  # sklearn Pipeline: the classifier is the last step
        est = est.steps[-1][1]
    if hasattr(est, "present_columns_"):  # perpbot ThreeClassClassifier
        est = getattr(est, "estimator_", None)
        if est is None:
            return None, ""
    if hasattr(est, "estimators_") and hasattr(est, "weights") and not hasattr(est, "feature_importances_"):
        parts = [(_importance_of(m)) for m in est.estimators_]  # VotingClassifier (ensemble)
        w = np.asarray(est.weights if est.weights is not None else np.ones(len(parts)), dtype=np.float64)
        vecs = [(v, wi) for (v, _), wi in zip(parts, w) if v is not None]
        if not vecs:
            return None, ""
        total = sum(v * wi for v, wi in vecs) / sum(wi for _, wi in vecs)
        return total, "mean of the ensemble members' normalised importances (voting weights)"
    booster = getattr(est, "booster_", None)
    if booster is not None and hasattr(booster, "feature_importance"):  # LightGBM: total split gain
        vec, method = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64), \
            "LightGBM total split gain"
    elif hasattr(est, "feature_importances_"):
        vec = np.asarray(est.feature_importances_, dtype=np.float64)
        method = f"{type(est).__name__}.feature_importances_"
    elif hasattr(est, "coef_"):  # linear model on standardised features: mean |coefficient| over classes
        vec, method = np.abs(np.asarray(est.coef_, dtype=np.float64)).mean(axis=0), "mean |coefficient| " \
            "(standardised features)"
    else:
        return None, ""
    total = vec.sum()
    return (vec / total if total > 0 else vec), method


def feature_importance(model, top: int = 20) -> tuple[pd.DataFrame | None, str]:
    """Feature importance of a model bundle: each fold model's importances (normalised to sum 1:
    a share of the model's total) averaged over the fold models, with their standard deviation
    across folds; the final model alone when there are no folds.

    ``model``: a :class:`perpbot.ml.registry.ModelBundle` (anything with ``feature_names``,
    ``folds[i].model`` and ``final_model``). Returns (frame indexed by feature with columns
    importance, std, n_models — the ``top`` largest, descending — and the method), or
    (None, reason) when the models expose no importance.
    """
    names = list(getattr(model, "feature_names", []) or [])
    models = [f.model for f in getattr(model, "folds", []) or [] if getattr(f, "model", None) is not None]
    scope = "walk-forward fold models"
    if not models and getattr(model, "final_model", None) is not None:
        models, scope = [model.final_model], "final model"
    vecs, method = [], ""
    for m in models:
        v, method_m = _importance_of(m)
        if v is not None and v.size == len(names):
            vecs.append(v)
            method = method_m
    if not vecs:
        return None, "the model exposes no feature importance (or no fitted models were given)"
    arr = np.vstack(vecs)
    df = pd.DataFrame({"importance": arr.mean(axis=0), "std": arr.std(axis=0, ddof=0), "n_models": len(vecs)},
                      index=pd.Index(names, name="feature"))
    df = df.sort_values("importance", ascending=False, kind="stable").head(top)
    return df, f"{method}, share of each model's total, mean over {len(vecs)} {scope}"


def permutation_table(model, top: int = 20) -> tuple[pd.DataFrame | None, str]:
    """The permutation importance saved with a model (:func:`perpbot.ml.importance.fold_permutation_importance`,
    in a ModelBundle's ``importance`` or its metadata dict's ``"importance"``): the ``top`` features
    (columns group, mean, std, in nats of log-loss per row; descending) and, as a last block, each
    feature group's sum; (None, reason) when the model has none."""
    from perpbot.features.groups import group_of

    imp = model.get("importance") if isinstance(model, dict) else getattr(model, "importance", None)
    feats = (imp or {}).get("features") or {}
    if not feats:
        return None, "importance_rows = 0 at training, or a model from before it was computed"
    df = pd.DataFrame.from_dict(feats, orient="index")[["mean", "std"]]
    df.insert(0, "group", [group_of(str(n)) for n in df.index])
    df.index.name = "feature"
    sums = df.groupby("group", sort=False)["mean"].sum().sort_values(ascending=False)
    groups = pd.DataFrame({"group": sums.index, "mean": sums.to_numpy(), "std": np.nan},
                          index=pd.Index([f"[group] {g}" for g in sums.index], name="feature"))
    out = pd.concat([df.sort_values("mean", ascending=False, kind="stable").head(top), groups])
    method = (f"{imp.get('method', 'permutation importance')}: {imp.get('unit', '')}, mean and std over "
              f"{imp.get('n_folds', '?')} test folds ({imp.get('rows_per_fold', '?')} rows each, "
              f"{imp.get('repeats', '?')} shuffles); group rows sum their features' means")
    return out, method


def fold_windows(model) -> pd.DataFrame | None:
    """The walk-forward test windows of a bundle (``folds[i]``) or of its metadata dict (``"folds"``):
    columns test_start, test_end (tz-aware UTC, end exclusive), n_train; plus a last row "final"
    from ``final_from_time`` (open end) when known. None when the model has no folds."""
    if model is None:
        return None
    folds = model.get("folds") if isinstance(model, dict) else getattr(model, "folds", None)
    if not folds:
        return None
    get = (lambda f, k: f.get(k)) if isinstance(folds[0], dict) else (lambda f, k: getattr(f, k, None))
    rows = [{"fold": str(i + 1), "test_start": pd.Timestamp(get(f, "test_start_time")),
             "test_end": pd.Timestamp(get(f, "test_end_time")), "n_train": get(f, "n_train")}
            for i, f in enumerate(folds)]
    final = model.get("final_from_time") if isinstance(model, dict) else getattr(model, "final_from_time", None)
    if final is not None:
        rows.append({"fold": "final", "test_start": pd.Timestamp(final), "test_end": pd.NaT, "n_train": None})
    df = pd.DataFrame(rows)
    for c in ("test_start", "test_end"):
        df[c] = pd.to_datetime(df[c], utc=True)
    return df


def fold_metrics(windows: pd.DataFrame, y, proba, timestamps, threshold: float,
                 trades: pd.DataFrame | None = None) -> pd.DataFrame:
    """Model and trading metrics of each walk-forward window, on the backtested bars inside it.

    ``windows``: :func:`fold_windows`; ``timestamps``: (n,) candle open times (UTC) of ``y`` /
    ``proba``; a bar belongs to a window when ``test_start <= t < test_end``. Columns: fold,
    test_start, test_end, bars, accuracy (+ accuracy_base), directional_accuracy (+ _base),
    n_calls, precision (+ precision_base), log_loss (+ log_loss_base) from
    :func:`perpbot.ml.metrics.model_metrics`, then trades (entries inside the window), net_pnl
    (USDT) and win_rate of those trades. Windows with no backtested bar are left out.
    """
    from perpbot.ml.metrics import model_metrics

    ts = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    entry = pd.to_datetime(trades["entry_time"], utc=True) if trades is not None and len(trades) else None
    keys = ("accuracy", "accuracy_base", "directional_accuracy", "directional_accuracy_base", "n_calls",
            "precision", "precision_base", "log_loss", "log_loss_base")
    rows = []
    for w in windows.itertuples():
        mask = ts >= w.test_start
        if not pd.isna(w.test_end):
            mask &= ts < w.test_end
        if not mask.any():
            continue
        m = model_metrics(y[mask], p[mask], threshold)
        row = {"fold": w.fold, "test_start": w.test_start, "test_end": w.test_end, "bars": int(mask.sum()),
               **{k: m[k] for k in keys}}
        if entry is not None:
            inside = (entry >= w.test_start) & ((entry < w.test_end) if not pd.isna(w.test_end) else True)
            pnl = trades.loc[np.asarray(inside), "pnl"].to_numpy(np.float64)
            row.update(trades=int(pnl.size), net_pnl=float(pnl.sum()),
                       win_rate=float(np.mean(pnl > 0)) if pnl.size else np.nan)
        else:
            row.update(trades=0, net_pnl=0.0, win_rate=np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def calls_per_month(signal, timestamps, trades: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per calendar month (UTC, of the candle open time): long_calls / short_calls = bars whose
    signal is +1 / -1 (the model's confident calls, one per bar), trades = positions opened.
    Index: "YYYY-MM" strings. Raises ``ValueError`` when lengths differ."""
    sig = np.asarray(signal)
    ts = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    if sig.shape != (len(ts),):
        raise ValueError(f"signal has shape {sig.shape}, expected ({len(ts)},)")
    month = ts.tz_localize(None).to_period("M")
    df = pd.DataFrame({"long_calls": sig > 0, "short_calls": sig < 0}, index=month).groupby(level=0).sum()
    df["trades"] = 0
    if trades is not None and len(trades):
        opened = pd.to_datetime(trades["entry_time"], utc=True).dt.tz_localize(None).dt.to_period("M")
        df["trades"] = opened.value_counts().reindex(df.index, fill_value=0).astype(int)
    df.index = df.index.astype(str)
    return df.astype(int)


def model_panel(strategy: str, *, proba, y, timestamps, signal, threshold: float,
                trades: pd.DataFrame | None = None, model=None) -> ModelPanel:
    """Every model part that the inputs allow (see :class:`ModelPanel`); never raises for missing parts.

    ``model``: a ModelBundle (folds, feature importance), its metadata dict (folds only) or None.
    """
    panel = ModelPanel(strategy=strategy)
    panel.version = (model.get("version") if isinstance(model, dict) else getattr(model, "version", None)) \
        if model is not None else None
    try:
        panel.calibration = calibration_table(y, proba)
    except ValueError as exc:
        panel.missing["calibration"] = str(exc)
    panel.calls = calls_per_month(signal, timestamps, trades)
    if model is None:
        why = "no model was given to the report (pass the model bundle or its metadata)"
        panel.missing.update(importance=why, folds=why)
        return panel
    panel.permutation, method = permutation_table(model)
    if panel.permutation is None:
        panel.missing["permutation"] = method
    else:
        panel.permutation_method = method
    if isinstance(model, dict):
        panel.missing["importance"] = "only the model's metadata was given (importance needs the fitted models)"
    else:
        panel.importance, method = feature_importance(model)
        if panel.importance is None:
            panel.missing["importance"] = method
        else:
            panel.importance_method = method
    windows = fold_windows(model)
    if windows is None:
        panel.missing["folds"] = "the model has no walk-forward folds"
    else:
        panel.folds = fold_metrics(windows, y, proba, timestamps, threshold, trades)
        if panel.folds.empty:
            panel.folds = None
            panel.missing["folds"] = "no walk-forward test window overlaps the backtested candles"
    return panel
