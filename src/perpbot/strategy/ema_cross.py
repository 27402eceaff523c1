"""EMA-cross baseline strategy: buy/sell signals where a fast EMA crosses a slow EMA.

One of the baselines every report shows beside the model (DESIGN.md, principle 4).
The signal at bar *t* uses closes up to and including *t* only; the backtester acts
on it at the open of *t+1*.
"""

from __future__ import annotations

import numpy as np
import talib

__all__ = ["ema_cross_signals", "as_price_array"]

#: Two values closer than ``TIE_RTOL * |close|`` are treated as equal, so float noise
#: from TA-Lib's running sums never creates a signal where exact arithmetic has a tie.
TIE_RTOL = 1e-9


def as_price_array(values, name: str) -> np.ndarray:
    """Return ``values`` as a contiguous 1-D float64 array (what TA-Lib needs).

    Raises ``ValueError`` when the input is not 1-D, is empty, or holds NaN/inf
    (a NaN would silently poison every later TA-Lib value).
    """
    arr = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name}: non-finite value at index {int(np.argmax(bad))}")
    return arr


def _tie_zero(diff: np.ndarray, close: np.ndarray) -> np.ndarray:
    """``diff`` with values within the tie tolerance set to 0 (NaN kept)."""
    out = diff.copy()
    out[np.abs(diff) <= TIE_RTOL * np.abs(close)] = 0.0
    return out


def ema_cross_signals(close: np.ndarray, fast: int = 20, slow: int = 50) -> np.ndarray:
    """Signals from crosses of EMA(``fast``) over EMA(``slow``) of the close price.

    Parameters
    ----------
    close : 1-D float array of close prices (USDT), length n, oldest first.
    fast, slow : EMA periods in bars (TA-Lib ``EMA``: seeded with the SMA of the first
        ``period`` closes, then ``ema += 2/(period+1) * (close - ema)``); ``2 <= fast < slow``.

    Returns
    -------
    int8 array of length n: ``+1`` (buy) at bar t where ``d[t] > 0 and d[t-1] <= 0``,
    ``-1`` (sell) where ``d[t] < 0 and d[t-1] >= 0``, ``0`` otherwise, with
    ``d = EMA(fast) - EMA(slow)``. Bars where either EMA is still warming up (NaN,
    i.e. t < slow) are 0. ``|d| <= 1e-9 * close`` counts as a tie (``d = 0``).

    Raises
    ------
    ValueError : ``fast >= slow``, a period below 2, or a bad ``close`` array
        (not 1-D, empty, NaN/inf).
    """
    if int(fast) != fast or int(slow) != slow:
        raise ValueError(f"ema_cross_signals: periods must be integers, got fast={fast}, slow={slow}")
    fast, slow = int(fast), int(slow)
    if fast < 2:
        raise ValueError(f"ema_cross_signals: fast period must be >= 2, got {fast}")
    if fast >= slow:
        raise ValueError(f"ema_cross_signals: fast period ({fast}) must be < slow period ({slow})")
    c = as_price_array(close, "close")
    n = c.size
    out = np.zeros(n, dtype=np.int8)
    if n < 2:
        return out
    d = _tie_zero(talib.EMA(c, timeperiod=fast) - talib.EMA(c, timeperiod=slow), c)
    prev, cur = d[:-1], d[1:]
    with np.errstate(invalid="ignore"):  # NaN comparisons are False: warm-up stays 0
        up = (cur > 0) & (prev <= 0)
        down = (cur < 0) & (prev >= 0)
    out[1:][up] = 1
    out[1:][down] = -1
    return out
