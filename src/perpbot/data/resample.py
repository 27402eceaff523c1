"""Reshaping market data onto a candle grid: resampling to a higher timeframe and
aligning funding events (rate and mark price) to candles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.data.validate import (
    DataError,
    infer_timeframe,
    timeframe_to_ms,
    timestamps_to_ms,
    validate_candles,
    validate_funding,
)

__all__ = ["align_funding", "resample_candles"]


def resample_candles(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate candles to a higher timeframe (e.g. 5m -> 1h).

    ``df`` is a candle frame as returned by :func:`~perpbot.data.load_candles` (gaps
    allowed); its timeframe is ``df.attrs["timeframe"]`` or inferred from the timestamps.
    Output bars are labelled by their OPEN time, aligned to the UTC epoch grid of
    ``timeframe`` (so 1h bars open on the hour, 1d bars at 00:00 UTC, 8h at 00/08/16 UTC).
    open = first open, high = max high, low = min low, close = last close, volume = sum.
    Only complete bars are kept: a bucket missing any source candle is dropped (so a
    partial first/last bucket never appears).

    Returns the same columns/dtypes as the input (RangeIndex, ``attrs["timeframe"]`` set).
    Raises ValueError for an unknown timeframe or one that is not a multiple of the source
    timeframe (or shorter); DataError if ``df`` is not a valid candle frame.
    """
    target_ms = timeframe_to_ms(timeframe)
    src_tf = df.attrs.get("timeframe") if isinstance(df, pd.DataFrame) else None
    if src_tf is None and isinstance(df, pd.DataFrame) and "timestamp" in df.columns:
        src_tf = infer_timeframe(timestamps_to_ms(df["timestamp"]))
    df = validate_candles(df, src_tf, allow_gaps=True)
    src_tf = df.attrs["timeframe"]
    src_ms = timeframe_to_ms(src_tf)
    if target_ms < src_ms or target_ms % src_ms:
        raise ValueError(f"cannot resample {src_tf} candles to {timeframe}: target must be a multiple of the source")
    if target_ms == src_ms:
        return df
    ts = timestamps_to_ms(df["timestamp"])
    bucket = ts - ts % target_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    full = (ends - starts) == target_ms // src_ms
    s, e = starts[full], ends[full]
    if len(s) == 0:
        out = df.iloc[:0].reset_index(drop=True)
        out.attrs["timeframe"] = timeframe
        return out
    high = np.maximum.reduceat(df["high"].to_numpy(), starts)[full]
    low = np.minimum.reduceat(df["low"].to_numpy(), starts)[full]
    vol = np.add.reduceat(df["volume"].to_numpy(), starts)[full]
    out = pd.DataFrame({
        "timestamp": pd.to_datetime(bucket[s], unit="ms", utc=True).as_unit("ms"),
        "open": df["open"].to_numpy()[s],
        "high": high,
        "low": low,
        "close": df["close"].to_numpy()[e - 1],
        "volume": vol,
    })
    out.attrs["timeframe"] = timeframe
    return out


def align_funding(timestamps: pd.Series, timeframe: str, funding: pd.DataFrame | None,
                  mark: pd.DataFrame | None, fallback_price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Funding rate and mark price per candle, for charging funding in a bar loop.

    Parameters
    ----------
    timestamps:
        Candle OPEN times (n rows, tz-aware UTC, strictly increasing; gaps allowed).
    timeframe:
        The candles' timeframe (validated; one of ``TIMEFRAMES``).
    funding:
        Funding frame (``timestamp``, ``funding_rate`` fraction per interval) or None
        (no funding: both outputs are trivial).
    mark:
        Mark-price candles (``timestamp`` = candle open, ``open`` = mark price at that
        instant), or None to use ``fallback_price`` throughout.
    fallback_price:
        float array of length n (USDT), e.g. the candles' open prices.

    Returns
    -------
    (rate, mark_price): float64 arrays of length n.
    ``rate[i]`` is the funding rate of the event at time T with ``open[i-1] < T <= open[i]``
    (for i = 0 only T == open[0] counts; events outside the candles' span are ignored),
    0.0 when there is none. ``mark_price[i]`` is the mark price at T: the ``open`` of the
    mark candle whose timestamp == T, else ``fallback_price[i]``; where ``rate[i] == 0``
    it is ``fallback_price[i]``.

    Convention: a position held at the open of bar i (i.e. carried through T) pays
    ``qty x mark_price[i] x rate[i]`` USDT (qty signed: longs pay when the rate is
    positive, shorts receive), the standard USDT-M funding formula
    (funding fee = position notional at mark price x funding rate).

    When one bar spans several events (bars longer than the funding interval, or a gap in
    the candles), the payment is preserved: ``mark_price[i]`` is the mark at the last of
    those events and ``rate[i] = sum_k(mark_k x rate_k) / mark_price[i]``.

    Raises ValueError for a bad timeframe or a ``fallback_price`` of the wrong length;
    DataError for invalid timestamps or funding/mark frames.
    """
    timeframe_to_ms(timeframe)
    open_ms = timestamps_to_ms(timestamps, "timestamps")
    n = len(open_ms)
    fallback = np.asarray(fallback_price, dtype=np.float64)
    if fallback.shape != (n,):
        raise ValueError(f"fallback_price has shape {fallback.shape}; expected ({n},) to match timestamps")
    if n > 1 and (np.diff(open_ms) <= 0).any():
        raise DataError("timestamps: not strictly increasing")
    rate = np.zeros(n, dtype=np.float64)
    mark_price = fallback.copy()
    if funding is None or n == 0 or len(funding) == 0:
        return rate, mark_price
    f = validate_funding(funding, source="funding")
    t_ms = timestamps_to_ms(f["timestamp"])
    f_rate = f["funding_rate"].to_numpy()
    bar = np.searchsorted(open_ms, t_ms, side="left")  # first bar whose open >= T
    inside = (bar < n) & ((bar > 0) | (t_ms == open_ms[0]))
    bar, t_ms, f_rate = bar[inside], t_ms[inside], f_rate[inside]
    if len(bar) == 0:
        return rate, mark_price
    ev_mark = fallback[bar].copy()
    if mark is not None and len(mark):
        m_ms = timestamps_to_ms(mark["timestamp"], "mark")
        if len(m_ms) > 1 and (np.diff(m_ms) <= 0).any():
            raise DataError("mark: timestamps not strictly increasing")
        m_open = mark["open"].to_numpy(dtype=np.float64)
        j = np.minimum(np.searchsorted(m_ms, t_ms), len(m_ms) - 1)
        hit = m_ms[j] == t_ms
        ev_mark[hit] = m_open[j[hit]]
        if not (np.isfinite(ev_mark) & (ev_mark > 0)).all():
            raise DataError("mark: non-positive or NaN mark price at a funding event")
    # bar is non-decreasing (events are sorted): group the events of each bar
    first = np.flatnonzero(np.r_[True, bar[1:] != bar[:-1]])
    last = np.r_[first[1:], len(bar)] - 1
    bars = bar[first]
    mark_price[bars] = ev_mark[last]
    payment = np.add.reduceat(ev_mark * f_rate, first)
    single = first == last
    rate[bars] = np.where(single, f_rate[first], payment / ev_mark[last])
    zero = rate == 0.0
    mark_price[zero] = fallback[zero]
    return rate, mark_price
