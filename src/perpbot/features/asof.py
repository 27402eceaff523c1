"""As-of joins of slower series onto a candle grid, by the time each value becomes known.

A value of a bar that closes at ``C`` (open + its timeframe) is known from ``C`` on. A candle
row opened at ``T`` is decided at its close ``T + base``; it may see every value whose known
time is ``<= T + base`` and nothing later. :func:`asof_rows` finds, for each row, the last such
value; :func:`asof_take` gathers the values (NaN before the first one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.data.validate import infer_timeframe, timeframe_to_ms, timestamps_to_ms

__all__ = ["asof_rows", "asof_take", "bar_close_ms", "candle_timeframe"]


def candle_timeframe(candles: pd.DataFrame) -> str:
    """``candles.attrs["timeframe"]`` or the timeframe inferred from its timestamps."""
    tf = candles.attrs.get("timeframe")
    return tf or infer_timeframe(timestamps_to_ms(candles["timestamp"], "<candles>"), "<candles>")


def bar_close_ms(candles: pd.DataFrame, timeframe: str | None = None) -> np.ndarray:
    """int64 (n,) close times of the bars in ms since the epoch (open + timeframe)."""
    tf = timeframe or candle_timeframe(candles)
    return timestamps_to_ms(candles["timestamp"], "<candles>") + timeframe_to_ms(tf)


def asof_rows(row_known_ms: np.ndarray, value_known_ms: np.ndarray) -> np.ndarray:
    """int64 (n,): index of the last value with known time <= each row's decision time, -1 if none.

    ``value_known_ms`` must be sorted ascending (bar close times of a resampled series are).
    """
    return np.searchsorted(np.asarray(value_known_ms), np.asarray(row_known_ms), side="right") - 1


def asof_take(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """float64 values[idx], NaN where idx < 0 (nothing known yet) or values is empty."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return np.full(len(idx), np.nan)
    out = values[np.maximum(idx, 0)]
    return np.where(idx >= 0, out, np.nan)
