"""True range and Wilder's average true range (ATR) on plain arrays — pure functions.

Definitions (J. Welles Wilder, *New Concepts in Technical Trading Systems*, 1978; the same
as TA-Lib's ``TRANGE`` / ``ATR``):

- true range of bar *i* = max(high_i − low_i, |high_i − close_{i−1}|, |low_i − close_{i−1}|);
  a bar without a previous close (the first one) has true range high − low.
- ATR over ``period`` bars: the first value is the simple mean of the first ``period`` true
  ranges, then ``ATR_i = (ATR_{i−1} × (period − 1) + TR_i) / period`` (Wilder's smoothing).

TA-Lib starts its ATR at bar 1 (it has no true range for bar 0), so
``atr_wilder(true_range(h, l, c)[1:], n) == talib.ATR(h, l, c, n)[-1]``.

Prices in quote currency (USDT for linear perpetuals); results in the same unit.
"""

from __future__ import annotations

import numpy as np
import talib

__all__ = ["atr_wilder", "trailing_atr", "true_range", "true_range_one"]


def _array(name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def true_range_one(high: float, low: float, prev_close: float | None) -> float:
    """True range of one bar (quote currency); ``prev_close`` None gives high − low.

    Raises:
        ValueError: a non-finite price or high < low.
    """
    h, lo = float(high), float(low)
    if not (np.isfinite(h) and np.isfinite(lo)) or (prev_close is not None and not np.isfinite(prev_close)):
        raise ValueError("true range of non-finite prices")
    if h < lo:
        raise ValueError(f"high {h} is below low {lo}")
    if prev_close is None:
        return h - lo
    pc = float(prev_close)
    return max(h - lo, abs(h - pc), abs(lo - pc))


def true_range(high, low, close) -> np.ndarray:
    """True range of every bar: float64 array of shape (n,) from three arrays of shape (n,).

    Element 0 is high − low (no previous close). Raises ValueError on mismatched lengths,
    NaN/inf values or a bar whose high is below its low.
    """
    h, lo, c = _array("high", high), _array("low", low), _array("close", close)
    if not (len(h) == len(lo) == len(c)):
        raise ValueError(f"high, low and close differ in length: {len(h)}, {len(lo)}, {len(c)}")
    if np.any(h < lo):
        raise ValueError("a bar has high below low")
    tr = h - lo
    if len(h) > 1:
        prev = c[:-1]
        tr[1:] = np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - prev), np.abs(lo[1:] - prev)])
    return tr


def atr_wilder(tr, period: int) -> float:
    """Wilder's ATR at the last bar of ``tr`` (true ranges, shape (n,), quote currency).

    Needs ``n >= period``; the first ``period`` values seed the average (their mean), every
    later value is folded in with weight ``1 / period``.

    Raises:
        ValueError: ``period < 1``, fewer than ``period`` values, or NaN/inf/negative values.
    """
    if int(period) != period or period < 1:
        raise ValueError(f"period must be a positive integer, got {period!r}")
    arr = _array("true range", tr)
    if np.any(arr < 0):
        raise ValueError("true range values must be >= 0")
    if len(arr) < period:
        raise ValueError(f"ATR({period}) needs at least {period} true ranges, got {len(arr)}")
    atr = float(arr[:period].mean())
    for x in arr[period:]:
        atr = (atr * (period - 1) + float(x)) / period
    return atr


def trailing_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> float:
    """ATR (USDT) of the last bar of a trailing window, as the batch TA-Lib ATR computes it."""
    return float(talib.ATR(high, low, close, timeperiod=period)[-1])
