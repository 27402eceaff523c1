"""The ``regime`` feature group: the volatility regime of the traded candles.

Windows are in time, converted to candles of the frame's timeframe (``day`` = one day of
candles: 288 at 5m, 96 at 15m, 24 at 1h):

| column | definition | unit |
|---|---|---|
| ``reg_rv_1d`` | sample std of the last ``day`` one-candle log returns | log return per candle |
| ``reg_rv_ratio`` | std of the last ``day/6`` returns / ``reg_rv_1d`` (vol expanding > 1) | ratio |
| ``reg_rv_rank`` | share of the last ``2 day`` values of ``reg_rv_1d`` that are <= the current one | 0..1 |
| ``reg_state`` | 0 low / 1 mid / 2 high volatility: ``reg_rv_rank`` < 1/3, < 2/3, else | 0, 1, 2 |
| ``reg_parkinson`` | Parkinson range volatility over ``day/6`` candles: sqrt(mean(ln(h/l)^2) / (4 ln 2)) | log return per candle |
| ``reg_efficiency`` | Kaufman efficiency ratio over ``day/6`` candles: abs net move / sum of abs moves | 0..1 (1 = straight trend) |

Every value is a finite window over the candles (computed per window, no running sums), so a
trailing window of ``3 day + 1`` candles (865 at 5m) gives the batch value exactly.
Parkinson (1980), *The Extreme Value Method for Estimating the Variance of the Rate of Return*;
Kaufman (1995), *Smarter Trading*.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.data.validate import timeframe_to_ms
from perpbot.features.asof import candle_timeframe

__all__ = ["REGIME_NAMES", "regime_features", "regime_window_bars"]

REGIME_NAMES = ("reg_rv_1d", "reg_rv_ratio", "reg_rv_rank", "reg_state", "reg_parkinson", "reg_efficiency")
_DAY_MS = 86_400_000


def _day(timeframe: str) -> int:
    return max(12, _DAY_MS // timeframe_to_ms(timeframe))


def regime_window_bars(timeframe: str) -> int:
    """Candles a trailing window needs for every ``regime`` value to equal the batch value."""
    return 3 * _day(timeframe) + 1


def _roll(x: np.ndarray, w: int, fn, chunk: int = 8192) -> np.ndarray:
    """fn over each trailing window of w values (NaN before), in chunks to bound memory."""
    out = np.full(len(x), np.nan)
    if len(x) < w:
        return out
    view = np.lib.stride_tricks.sliding_window_view(x, w)
    for s in range(0, len(view), chunk):
        out[w - 1 + s: w - 1 + s + len(view[s: s + chunk])] = fn(view[s: s + chunk])
    return out


def regime_features(candles: pd.DataFrame) -> pd.DataFrame:
    """The ``regime`` columns (:data:`REGIME_NAMES`, float64) for every candle; index = ``candles.index``."""
    out = pd.DataFrame(np.nan, index=candles.index, columns=list(REGIME_NAMES))
    n = len(candles)
    if not n:
        return out
    day = _day(candle_timeframe(candles))
    short = day // 6
    h, lo, c = (candles[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    r = np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        r[1:] = np.log(c[1:] / c[:-1])
        std = lambda a: np.std(a, axis=1, ddof=1)  # noqa: E731
        rv = _roll(r, day, std)
        rv_s = _roll(r, short, std)
        rank_w = 2 * day
        rank = _roll(rv, rank_w, lambda a: np.where(np.isnan(a).any(axis=1), np.nan,
                                                   (a <= a[:, -1:]).sum(axis=1) / a.shape[1]))
        hl2 = np.log(h / lo) ** 2
        park = np.sqrt(_roll(hl2, short, lambda a: a.mean(axis=1)) / (4.0 * np.log(2.0)))
        absmove = np.abs(np.r_[np.nan, np.diff(c)])
        net = np.full(n, np.nan)
        net[short:] = np.abs(c[short:] - c[:-short])
        eff = net / _roll(absmove, short, lambda a: a.sum(axis=1))
        out["reg_rv_1d"] = rv
        out["reg_rv_ratio"] = rv_s / rv
        out["reg_rv_rank"] = rank
        out["reg_state"] = np.where(np.isfinite(rank), np.where(rank < 1 / 3, 0.0, np.where(rank < 2 / 3, 1.0, 2.0)),
                                    np.nan)
        out["reg_parkinson"] = park
        out["reg_efficiency"] = eff
    vals = out.to_numpy()
    vals[~np.isfinite(vals)] = np.nan
    return pd.DataFrame(vals, index=candles.index, columns=list(REGIME_NAMES))
