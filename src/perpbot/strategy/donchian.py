"""Donchian breakout rule: buy when the close breaks above the highest high of the previous
``period`` bars, sell when it breaks below their lowest low (R. Donchian's channel breakout,
the entry rule of the "Turtle" trend followers).

The signal at bar *t* uses candles up to and including *t* only (the channel is built from
bars ``t-period .. t-1``); the backtester acts on it at the open of *t+1*.
"""

from __future__ import annotations

import numpy as np
import talib

from perpbot.strategy.ema_cross import as_price_array

__all__ = ["donchian_signals"]


def donchian_signals(high, low, close, period: int = 20) -> np.ndarray:
    """Breakout signals of a ``period``-bar Donchian channel.

    Parameters
    ----------
    high, low, close : 1-D float arrays of equal length n (USDT), oldest first.
    period : channel length in bars (>= 2): ``upper[t] = max(high[t-period .. t-1])``,
        ``lower[t] = min(low[t-period .. t-1])`` (TA-Lib MAX / MIN shifted by one bar).

    Returns
    -------
    int8 array of length n: +1 where ``close[t] > upper[t]``, -1 where ``close[t] < lower[t]``,
    0 otherwise and for the first ``period`` bars (channel not yet defined).

    Raises
    ------
    ValueError : period < 2 or not an integer, or bad arrays (not 1-D, empty, NaN/inf,
        different lengths).
    """
    if int(period) != period or period < 2:
        raise ValueError(f"donchian_signals: period must be an integer >= 2, got {period}")
    period = int(period)
    h, lo, c = (as_price_array(a, name) for a, name in ((high, "high"), (low, "low"), (close, "close")))
    if not h.size == lo.size == c.size:
        raise ValueError(f"donchian_signals: lengths differ: high {h.size}, low {lo.size}, close {c.size}")
    out = np.zeros(c.size, dtype=np.int8)
    if c.size <= period:
        return out
    upper = talib.MAX(h, timeperiod=period)[:-1]   # channel of bars t-period .. t-1, aligned to t
    lower = talib.MIN(lo, timeperiod=period)[:-1]
    cur = c[1:]
    with np.errstate(invalid="ignore"):
        out[1:][cur > upper] = 1
        out[1:][cur < lower] = -1
    return out
