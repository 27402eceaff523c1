"""The ``htf`` feature group: 15m / 1h / 4h features from CLOSED higher-timeframe bars only.

The higher-timeframe (HTF) bars are resampled from the candles themselves
(:func:`perpbot.data.resample.resample_candles`: complete buckets only, labelled by their open
time, aligned to the UTC epoch grid). An HTF bar opened at ``O`` closes at ``O + L``; a candle
opened at ``T`` (decided at its close ``T + base``) sees the last HTF bar with
``O + L <= T + base`` — never the HTF bar still forming (joining by the HTF bar's OPEN time
would leak its close, up to ``L - base`` into the future; tests/test_feature_groups.py shows the
look-ahead test catching exactly that). Levels not above the candles' timeframe are left out
(at 1h only ``4h`` remains).

Per level ``L`` (names ``htf<L>_<x>``), on the closed HTF bars:

| x | definition | unit |
|---|---|---|
| ``logret1`` | ln(close_k / close_{k-1}) | log return |
| ``logret3`` | ln(close_k / close_{k-3}) | log return |
| ``std12`` | sample std of the last 12 one-bar log returns | log return |
| ``range_pos12`` | (close - min low_12) / (max high_12 - min low_12) | 0..1 |
| ``close_sma12`` | close / mean(close_12) - 1 | fraction |
| ``body`` | close / open - 1 of the last closed bar | fraction |

Every value uses a finite window (at most 13 HTF bars), so a trailing window of candles that
covers 13 complete HTF bars plus one partial bucket gives the batch value exactly: 4h on 5m
candles needs 14 x 48 = 672 candles (< :data:`perpbot.features.build.RECOMMENDED_WINDOW`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.data.resample import resample_candles
from perpbot.data.validate import timeframe_to_ms
from perpbot.features.asof import asof_rows, asof_take, bar_close_ms, candle_timeframe

__all__ = ["HTF_LEVELS", "HTF_STATS", "htf_bar_features", "htf_features", "htf_names", "htf_window_bars"]

HTF_LEVELS = ("15m", "1h", "4h")
HTF_STATS = ("logret1", "logret3", "std12", "range_pos12", "close_sma12", "body")
_W = 12


def htf_levels(timeframe: str) -> list[str]:
    """The HTF levels above ``timeframe`` (e.g. 5m -> 15m, 1h, 4h; 1h -> 4h)."""
    base = timeframe_to_ms(timeframe)
    return [lvl for lvl in HTF_LEVELS if timeframe_to_ms(lvl) > base and timeframe_to_ms(lvl) % base == 0]


def htf_names(timeframe: str) -> list[str]:
    """Column names of :func:`htf_features` for candles of ``timeframe``, in order."""
    return [f"htf{lvl}_{x}" for lvl in htf_levels(timeframe) for x in HTF_STATS]


def htf_window_bars(timeframe: str) -> int:
    """Candles a trailing window needs for every ``htf`` value to equal the batch value."""
    base = timeframe_to_ms(timeframe)
    levels = htf_levels(timeframe)
    return max(((_W + 2) * timeframe_to_ms(lvl) // base for lvl in levels), default=1)


def _rolling(x: np.ndarray, w: int, fn) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) >= w:
        out[w - 1:] = fn(np.lib.stride_tricks.sliding_window_view(x, w), axis=1)
    return out


def htf_bar_features(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """:data:`HTF_STATS` for each bar of ``bars`` (an OHLC frame), computed from bars 0..k only."""
    o, h, lo, c = (bars[k].to_numpy(np.float64) for k in ("open", "high", "low", "close"))
    n = len(c)
    lr1 = np.full(n, np.nan)
    lr3 = np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        if n > 1:
            lr1[1:] = np.log(c[1:] / c[:-1])
        if n > 3:
            lr3[3:] = np.log(c[3:] / c[:-3])
        hi, low = _rolling(h, _W, np.max), _rolling(lo, _W, np.min)
        return {"logret1": lr1, "logret3": lr3,
                "std12": _rolling(lr1, _W, lambda a, axis: np.std(a, axis=axis, ddof=1)),
                "range_pos12": (c - low) / (hi - low),
                "close_sma12": c / _rolling(c, _W, np.mean) - 1.0,
                "body": c / o - 1.0}


def htf_features(candles: pd.DataFrame) -> pd.DataFrame:
    """The ``htf`` columns (:func:`htf_names`, float64) for every candle; index = ``candles.index``.

    ``candles``: validated OHLCV frame (UTC candle opens, no gaps), timeframe from
    ``attrs["timeframe"]`` or inferred. NaN until a level has enough closed bars.
    """
    tf = candle_timeframe(candles)
    names = htf_names(tf)
    out = pd.DataFrame(np.nan, index=candles.index, columns=names)
    if not len(candles) or not names:
        return out
    src = candles[["timestamp", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
    src.attrs["timeframe"] = tf
    row_known = bar_close_ms(candles, tf)
    for lvl in htf_levels(tf):
        bars = resample_candles(src, lvl)
        if not len(bars):
            continue
        idx = asof_rows(row_known, bar_close_ms(bars, lvl))
        for x, vals in htf_bar_features(bars).items():
            out[f"htf{lvl}_{x}"] = asof_take(np.where(np.isfinite(vals), vals, np.nan), idx)
    return out
