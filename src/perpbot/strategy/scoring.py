"""Rule-scoring baseline strategy: four classic indicator rules vote, the sum is the signal.

One of the baselines every report shows beside the model (DESIGN.md, principle 4).

Rules (each bar scores the sum of four votes, so the score is in -4..+4):

=====================  ===============================  ==============================
indicator (TA-Lib)     +1 (bullish)                     -1 (bearish)
=====================  ===============================  ==============================
RSI(14)                RSI < 30 (oversold)              RSI > 70 (overbought)
MACD(12, 26, 9)        MACD line > signal line          MACD line < signal line
Bollinger(20, 2 sd)    close < lower band               close > upper band
SMA(5) vs SMA(20)      SMA5 > SMA20                     SMA5 < SMA20
=====================  ===============================  ==============================

A rule votes 0 when its inequality does not hold or while its indicator is still
warming up (NaN). In the three price-unit comparisons, two values closer than
``1e-9 * close`` count as equal (vote 0), so float noise from TA-Lib's running sums
never turns an exact tie (e.g. SMA5 == SMA20 on 2-decimal prices) into a vote.
Signal: +1 (buy) when score >= ``buy_threshold``, -1 (sell) when score <=
``sell_threshold``, else 0 (hold). Every value at bar t uses data up to the close of
t only; the backtester acts at the open of t+1.
"""

from __future__ import annotations

import numpy as np
import talib

from perpbot.strategy.ema_cross import TIE_RTOL, as_price_array

__all__ = ["rule_scores"]


def _vote(a: np.ndarray, b: np.ndarray, close: np.ndarray) -> np.ndarray:
    """+1 where a > b, -1 where a < b, 0 on ties (|a-b| <= 1e-9*close) and NaN."""
    d = a - b
    out = np.zeros(d.size, dtype=np.int8)
    real = np.abs(d) > TIE_RTOL * np.abs(close)  # False for NaN
    out[real & (d > 0)] = 1
    out[real & (d < 0)] = -1
    return out


def rule_scores(
    open: np.ndarray,  # noqa: A002 - OHLC naming of the field
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    *,
    buy_threshold: int = 2,
    sell_threshold: int = -2,
) -> tuple[np.ndarray, np.ndarray]:
    """Score each bar with the rules in the module docstring and threshold it into signals.

    Parameters
    ----------
    open, high, low, close : 1-D float arrays of equal length n (USDT), oldest first.
        The current rules use ``close`` only; the others are validated so callers pass
        whole candles and future rules can use them.
    buy_threshold, sell_threshold : ints with ``sell_threshold < buy_threshold``.

    Returns
    -------
    (score, signal) : two int8 arrays of length n; score in -4..4, signal in {-1, 0, 1}.

    Raises
    ------
    ValueError : arrays not 1-D / empty / NaN / of different lengths, or
        ``sell_threshold >= buy_threshold``.
    """
    if sell_threshold >= buy_threshold:
        raise ValueError(
            f"rule_scores: sell_threshold ({sell_threshold}) must be < buy_threshold ({buy_threshold})"
        )
    arrays = {k: as_price_array(v, k) for k, v in
              {"open": open, "high": high, "low": low, "close": close}.items()}
    lengths = {k: v.size for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"rule_scores: open/high/low/close lengths differ: {lengths}")
    c = arrays["close"]
    n = c.size

    rsi = talib.RSI(c, timeperiod=14)
    rsi_vote = np.zeros(n, dtype=np.int8)
    rsi_vote[rsi < 30.0] = 1  # NaN compares False
    rsi_vote[rsi > 70.0] = -1

    macd, macd_signal, _ = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    upper, _, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    sma5 = talib.SMA(c, timeperiod=5)
    sma20 = talib.SMA(c, timeperiod=20)

    score = (
        rsi_vote
        + _vote(macd, macd_signal, c)
        + _vote(lower, c, c).clip(0, 1)  # close < lower band -> +1
        - _vote(c, upper, c).clip(0, 1)  # close > upper band -> -1
        + _vote(sma5, sma20, c)
    ).astype(np.int8)
    signal = np.zeros(n, dtype=np.int8)
    signal[score >= buy_threshold] = 1
    signal[score <= sell_threshold] = -1
    return score, signal
