"""The ``funding_basis`` feature group: the funding rate known at a candle's close, and the basis
(mark price vs last price) from the mark-price candles.

Funding events (``timestamp`` = settlement time T, ``funding_rate`` fraction per 8 h) are
known from T on; a candle opened at ``t`` sees the events with ``T <= t + base``. The mark
candles (``../shared/data``: ``SOLUSDT-8h-mark.parquet``) give the mark price at each mark
bar's CLOSE (``open + 8h``); the basis of that bar is mark close / last price at the same
instant - 1, where the last price is the close of the traded candle that ends at that instant
(NaN when that candle is not in the frame). It is known from the mark bar's close on.

| column | definition | unit |
|---|---|---|
| ``fb_funding_chg`` | last settled rate - the one before | fraction per interval |
| ``fb_funding_mean21`` | mean of the last 21 settled rates (7 days of 8 h) | fraction per interval |
| ``fb_funding_z21`` | (last - mean21) / sample std of those 21 | z-score |
| ``fb_hours_to_funding`` | hours from the candle's close to the next 00/08/16 UTC settlement | hours, (0, 8] |
| ``fb_basis_last`` | basis of the last closed mark bar | fraction (mark above last > 0) |
| ``fb_basis_mean3`` | mean basis of the last 3 closed mark bars | fraction |

The funding values depend on the event list only; the basis needs the traded candles at the
last 3 mark closes: 3 x 8 h of candles (289 at 5m) in a trailing window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.data.validate import DataError, timeframe_to_ms, timestamps_to_ms
from perpbot.features.asof import asof_rows, asof_take, bar_close_ms, candle_timeframe

__all__ = ["FUNDING_BASIS_NAMES", "basis_series", "funding_basis_features"]

FUNDING_BASIS_NAMES = ("fb_funding_chg", "fb_funding_mean21", "fb_funding_z21", "fb_hours_to_funding",
                       "fb_basis_last", "fb_basis_mean3")
_INTERVAL_MS = 8 * 3_600_000
_N = 21


def basis_series(candles: pd.DataFrame, mark: pd.DataFrame, timeframe: str) -> tuple[np.ndarray, np.ndarray]:
    """(close time ms, basis) of every mark bar: mark close / traded close at that instant - 1."""
    mtf = mark.attrs.get("timeframe") or candle_timeframe(mark)
    m_close = bar_close_ms(mark, mtf)
    c_close = bar_close_ms(candles, timeframe)
    j = np.minimum(np.searchsorted(c_close, m_close), max(len(c_close) - 1, 0))
    hit = (c_close[j] == m_close) if len(c_close) else np.zeros(len(m_close), bool)
    last = np.where(hit, candles["close"].to_numpy(np.float64)[j] if len(c_close) else np.nan, np.nan)
    return m_close, mark["close"].to_numpy(np.float64) / last - 1.0


def funding_basis_features(candles: pd.DataFrame, funding: pd.DataFrame | None,
                           mark: pd.DataFrame | None) -> pd.DataFrame:
    """The ``funding_basis`` columns (:data:`FUNDING_BASIS_NAMES`, float64) for every candle.

    ``funding``: validated funding frame; ``mark``: validated mark-price candles (any timeframe).
    Raises DataError when either is missing.
    """
    if funding is None or mark is None:
        what = "funding-rate history (funding_file)" if funding is None else "mark-price candles (mark_file)"
        raise DataError(f"feature group funding_basis needs the {what}; set funding = true and the file")
    out = pd.DataFrame(np.nan, index=candles.index, columns=list(FUNDING_BASIS_NAMES))
    if not len(candles):
        return out
    tf = candle_timeframe(candles)
    known = bar_close_ms(candles, tf)
    f_ms = timestamps_to_ms(funding["timestamp"], "funding")
    rate = funding["funding_rate"].to_numpy(np.float64)
    k = asof_rows(known, f_ms)
    prev = asof_take(rate, k - 1)
    out["fb_funding_chg"] = asof_take(rate, k) - np.where(k >= 1, prev, np.nan)
    mean = np.full(len(rate), np.nan)
    std = np.full(len(rate), np.nan)
    if len(rate) >= _N:
        w = np.lib.stride_tricks.sliding_window_view(rate, _N)
        mean[_N - 1:], std[_N - 1:] = w.mean(axis=1), w.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (rate - mean) / std
    out["fb_funding_mean21"] = asof_take(mean, k)
    out["fb_funding_z21"] = asof_take(np.where(np.isfinite(z), z, np.nan), k)
    out["fb_hours_to_funding"] = (_INTERVAL_MS - known % _INTERVAL_MS) / 3_600_000.0
    m_close, basis = basis_series(candles, mark, tf)
    i = asof_rows(known, m_close)
    b0, b1, b2 = asof_take(basis, i), asof_take(basis, i - 1), asof_take(basis, i - 2)
    out["fb_basis_last"] = b0
    out["fb_basis_mean3"] = np.where((i >= 2), (b0 + b1 + b2) / 3.0, np.nan)
    if timeframe_to_ms(tf) > _INTERVAL_MS:
        out["fb_hours_to_funding"] = np.nan
    return out
