"""Predictions meet outcomes: realised labels of recorded predictions and the live scorecard.

A model's out-of-sample figures describe the past; what the bot meets live may differ (regime
change, a feed problem, a model trained on other data). Every prediction the paper or live bot
records (a call: ``signal`` ±1 with its probabilities) gets its **realised label** once the
label's horizon has passed: the triple-barrier label (:func:`perpbot.ml.labels.triple_barrier_labels`)
of the decision candle with the model's own barrier rule (``label_settings``: take-profit,
stop-loss as fractions or ATR multiples, horizon in bars). :func:`scorecard` then compares
the live precision of the calls and their calibration with the model's out-of-sample precision
and warns when they drift apart.

Drift rule: with at least ``min_n`` labelled calls, a one-sided exact binomial test
(:func:`scipy.stats.binomtest`) of the live hits against the out-of-sample precision; a p-value
below ``alpha`` (default 0.01) is a drift warning.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from perpbot.ml.decision import barrier_fractions
from perpbot.ml.labels import triple_barrier_labels

__all__ = ["realised_labels", "settle_predictions", "scorecard"]


def realised_labels(times, candles: pd.DataFrame, label_settings: dict, atr_period: int = 14) -> pd.Series:
    """Realised triple-barrier label of each prediction time.

    Args:
        times: prediction times (tz-aware UTC; the open time of the decision candle, as the bots
            record them).
        candles: OHLC frame (``timestamp`` tz-aware UTC open times, ``high``, ``low``, ``close``
            in USDT), covering the decision candles and the ``horizon`` candles after them.
        label_settings: the model's ``label_settings`` (``take_profit``, ``stop_loss``,
            ``horizon``; ``barrier_mode`` "atr" for ATR multiples).
        atr_period: ATR period of ATR barriers (the settings' ``atr_period``).

    Returns:
        float64 Series indexed by ``times``: -1.0 / 0.0 / +1.0, NaN when the time is not a candle
        of ``candles`` or its horizon runs past their end (not yet known).

    Raises:
        ValueError: ``label_settings`` without take_profit / stop_loss / horizon, or bad candles.
    """
    missing = [k for k in ("take_profit", "stop_loss", "horizon") if k not in (label_settings or {})]
    if missing:
        raise ValueError(f"label_settings lacks {', '.join(missing)}: the model does not say how it was labelled")
    idx = pd.DatetimeIndex(times)
    if not len(candles) or not len(idx):
        return pd.Series(np.full(len(idx), np.nan), index=idx, dtype=np.float64)
    tp, sl = barrier_fractions(label_settings, candles, atr_period)
    labels = triple_barrier_labels(candles["high"].to_numpy(np.float64), candles["low"].to_numpy(np.float64),
                                   candles["close"].to_numpy(np.float64), tp, sl, int(label_settings["horizon"]))
    ts = pd.DatetimeIndex(candles["timestamp"])
    pos = ts.get_indexer(idx)
    out = np.where(pos >= 0, labels[np.maximum(pos, 0)], np.nan)
    return pd.Series(out, index=idx, dtype=np.float64)


def settle_predictions(ledger, run_id: int, candles: pd.DataFrame, label_settings: dict,
                       atr_period: int = 14) -> int:
    """Write the realised label of every prediction of ``run_id`` that has none yet and whose
    horizon has passed within ``candles`` (see :func:`realised_labels`); returns how many were
    labelled. Idempotent: a labelled prediction is never relabelled."""
    preds = ledger.predictions(run_id)
    if not len(preds):
        return 0
    open_ = preds[preds["realised_label"].isna()] if "realised_label" in preds else preds
    if not len(open_):
        return 0
    labels = realised_labels(open_["time"], candles, label_settings, atr_period)
    return ledger.record_outcomes(run_id, labels)


def scorecard(predictions: pd.DataFrame, oos_metrics: dict | None = None, *, min_n: int = 30,
              alpha: float = 0.01) -> dict:
    """Live precision and calibration of the recorded calls beside the model's out-of-sample figures.

    Args:
        predictions: the ledger's predictions of a run (``signal`` ±1 for a call, ``p_down``,
            ``p_up``, ``realised_label`` -1/0/+1 or NaN).
        oos_metrics: the model's ``oos_metrics`` (``precision``, ``precision_base``); None if unknown.
        min_n: labelled calls needed before a drift verdict.
        alpha: significance level of the drift test.

    Returns:
        dict: ``n_calls`` (calls recorded), ``n_labelled``, ``n_pending`` (horizon not passed),
        ``precision`` (share of labelled calls whose realised label equals the call; NaN with none),
        ``mean_confidence`` (mean probability the model gave the called side), ``ece`` (expected
        calibration error of those probabilities against the hits, 10 bins), ``oos_precision``,
        ``oos_precision_base``, ``p_value`` (binomial test, NaN before ``min_n``), ``drift`` (bool)
        and ``warning`` (one line, or None).
    """
    oos = oos_metrics or {}
    df = predictions if predictions is not None else pd.DataFrame()
    calls = df[df["signal"].fillna(0) != 0] if len(df) else df
    labelled = calls[calls["realised_label"].notna()] if len(calls) and "realised_label" in calls else calls.iloc[:0]
    nan = float("nan")
    out: dict[str, Any] = {"n_calls": int(len(calls)), "n_labelled": int(len(labelled)), "n_pending": int(len(calls) - len(labelled)),
           "precision": nan, "mean_confidence": nan, "ece": nan,
           "oos_precision": float(oos.get("precision", nan) if oos.get("precision") is not None else nan),
           "oos_precision_base": float(oos.get("precision_base", nan) if oos.get("precision_base") is not None else nan),
           "p_value": nan, "drift": False, "warning": None}
    if not len(labelled):
        return out
    sig = labelled["signal"].to_numpy(np.float64)
    hit = labelled["realised_label"].to_numpy(np.float64) == sig
    p_side = np.where(sig > 0, labelled["p_up"].to_numpy(np.float64), labelled["p_down"].to_numpy(np.float64))
    ok = np.isfinite(p_side)
    out["precision"] = float(hit.mean())
    if ok.any():
        from perpbot.ml.calibration import expected_calibration_error  # (scikit-learn: not at import)

        out["mean_confidence"] = float(p_side[ok].mean())
        out["ece"] = float(expected_calibration_error(hit[ok], np.clip(p_side[ok], 0.0, 1.0)))
    ref = out["oos_precision"]
    if len(labelled) >= min_n and math.isfinite(ref) and 0.0 < ref < 1.0:
        from scipy.stats import binomtest

        p = float(binomtest(int(hit.sum()), int(len(hit)), ref, alternative="less").pvalue)
        out["p_value"] = p
        if p < alpha:
            out["drift"] = True
            out["warning"] = (f"live precision {out['precision']:.3f} over {len(hit)} labelled calls is below the "
                              f"model's out-of-sample {ref:.3f} (binomial p = {p:.2g}): the model may no longer fit "
                              "this market")
    return out
