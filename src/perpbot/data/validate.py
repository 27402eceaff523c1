"""Validation of OHLCV candle and funding-rate frames: one place that says what clean market data is.

Every loader and the live/paper loop pass frames through :func:`validate_candles` or
:func:`validate_funding`; a frame that passes is sorted, unique, gap-free (unless gaps
are allowed), aligned to its timeframe and has internally consistent OHLC prices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "CANDLE_COLUMNS",
    "FUNDING_COLUMNS",
    "MAX_ABS_FUNDING_RATE",
    "MAX_BAR_RATIO",
    "MAX_PRICE",
    "MAX_VOLUME",
    "MIN_PRICE",
    "TIMEFRAMES",
    "DataError",
    "infer_timeframe",
    "timeframe_to_ms",
    "timestamps_to_ms",
    "validate_candles",
    "validate_funding",
]

#: Supported candle timeframes (ccxt spelling), shortest first.
TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "1d")

#: Columns of a candle frame, in order. Prices in USDT (quote), volume in base-asset units.
CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")

#: Columns of a funding frame, in order. ``funding_rate`` is a fraction per funding interval.
FUNDING_COLUMNS = ("timestamp", "funding_rate")

#: Sanity limits (a frame outside them is refused, not traded). Chosen far outside anything a
#: real market prints, so they only catch corrupt or mis-scaled data: every file of the
#: project's real data (BTC, ETH, SOL 1m..8h, 2019-2026) passes with a wide margin (largest
#: price 126,208.5 USDT; largest high/low within one candle 3.8x, ETH 1h on 2020-03-12;
#: largest open vs previous close 1.17x; largest |funding rate| 0.375 % per 8 h).
#: Prices in USDT, inclusive bounds.
MIN_PRICE, MAX_PRICE = 1e-12, 1e9
#: Largest price ratio allowed within one candle (high / low) and between a candle's open and
#: the previous close (a 99 % crash in one bar is the most a market ever shows).
MAX_BAR_RATIO = 100.0
#: Largest volume of one candle, base asset (more than the supply of any listed coin).
MAX_VOLUME = 1e18
#: Largest |funding rate| per funding interval, as a fraction (venues cap it at a few percent).
MAX_ABS_FUNDING_RATE = 0.1

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
_TF_MS = {tf: int(tf[:-1]) * _UNIT_MS[tf[-1]] for tf in TIMEFRAMES}
_MS_TF = {ms: tf for tf, ms in _TF_MS.items()}
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"})


class DataError(ValueError):
    """Market data is missing, unreadable or fails validation.

    The message is one line: ``"<file or frame>: <problem>"``.
    """


def timeframe_to_ms(tf: str) -> int:
    """Length of one candle of timeframe ``tf`` in milliseconds (``"5m"`` -> 300000).

    Raises ValueError (naming the allowed values) when ``tf`` is not in :data:`TIMEFRAMES`.
    """
    try:
        return _TF_MS[tf]
    except (KeyError, TypeError):
        raise ValueError(f"unknown timeframe {tf!r}; allowed: {', '.join(TIMEFRAMES)}") from None


def _fmt(ms: int) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()


def timestamps_to_ms(ts: pd.Series | pd.Index | np.ndarray, source: str = "<frame>",
                     round_to_second: bool = False) -> np.ndarray:
    """Convert tz-aware UTC timestamps to int64 milliseconds since the Unix epoch.

    Accepts ``datetime64[<unit>, UTC]`` of any unit; ``round_to_second`` rounds to the
    nearest second first. Raises DataError when the values are not datetimes, are naive
    (no time zone), are in a zone other than UTC, contain NaT, or carry sub-millisecond
    precision that would be lost.
    """
    dtype = getattr(ts, "dtype", None)
    if not isinstance(dtype, pd.DatetimeTZDtype):
        if isinstance(dtype, np.dtype) and dtype.kind == "M":
            raise DataError(f"{source}: timestamp is naive ({dtype}); expected tz-aware UTC datetimes")
        raise DataError(f"{source}: timestamp has dtype {dtype}; expected datetime64 with tz=UTC")
    if str(dtype.tz) not in _UTC_NAMES:
        raise DataError(f"{source}: timestamp is in time zone {dtype.tz}; expected UTC")
    idx = pd.DatetimeIndex(ts)
    if idx.hasnans:
        raise DataError(f"{source}: timestamp has {int(idx.isna().sum())} missing value(s) (NaT)")
    if round_to_second:
        idx = idx.round("s")
    if idx.unit == "ms":
        return idx.asi8.astype(np.int64, copy=True)
    raw = idx.as_unit("ns").asi8
    if (raw % 1_000_000).any():
        raise DataError(f"{source}: timestamp has sub-millisecond precision; expected whole milliseconds")
    return raw // 1_000_000


def _mode_step(ts_ms: np.ndarray) -> int:
    steps, counts = np.unique(np.diff(ts_ms), return_counts=True)
    return int(steps[np.argmax(counts)])


def infer_timeframe(ts_ms: np.ndarray, source: str = "<frame>") -> str:
    """Timeframe whose length equals the most common step between consecutive timestamps.

    ``ts_ms`` is int64 milliseconds. Raises DataError with fewer than two rows or when the
    most common step is not a supported timeframe.
    """
    if len(ts_ms) < 2:
        raise DataError(f"{source}: cannot infer the timeframe from {len(ts_ms)} row(s); pass timeframe=")
    step = _mode_step(ts_ms)
    if step not in _MS_TF:
        raise DataError(f"{source}: most common timestamp step is {step} ms, not a supported timeframe "
                        f"({', '.join(TIMEFRAMES)})")
    return _MS_TF[step]


def _check_columns(df: pd.DataFrame, required: tuple[str, ...], source: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}; have {', '.join(map(str, df.columns))}")
    if len(df) == 0:
        raise DataError(f"{source}: no rows")


def _float_column(df: pd.DataFrame, col: str, source: str) -> np.ndarray:
    try:
        return df[col].to_numpy(dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        raise DataError(f"{source}: column {col} is not numeric (dtype {df[col].dtype})") from None


def _check_order(ts_ms: np.ndarray, source: str) -> None:
    """Duplicates first (count + first), then ordering (count + first)."""
    dup = pd.Index(ts_ms).duplicated()
    if dup.any():
        first = int(np.flatnonzero(dup)[0])
        raise DataError(f"{source}: {int(dup.sum())} duplicate timestamp(s), first {_fmt(ts_ms[first])} at row {first}")
    back = np.flatnonzero(np.diff(ts_ms) < 0)
    if len(back):
        r = int(back[0]) + 1
        raise DataError(f"{source}: timestamps not sorted: {len(back)} step(s) go backwards, first at row {r} "
                        f"({_fmt(ts_ms[r])} after {_fmt(ts_ms[r - 1])})")


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def validate_candles(df: pd.DataFrame, timeframe: str | None = None, source: str = "<frame>",
                     allow_gaps: bool = False) -> pd.DataFrame:
    """Validate an OHLCV candle frame and return a clean copy.

    Input: columns ``timestamp`` (tz-aware UTC datetimes, candle OPEN time), ``open``,
    ``high``, ``low``, ``close`` (USDT), ``volume`` (base asset); extra columns are dropped.
    Output: RangeIndex, exactly :data:`CANDLE_COLUMNS`, ``timestamp`` as
    ``datetime64[ms, UTC]``, prices and volume as float64; ``df.attrs["timeframe"]`` is set.

    ``timeframe``: one of :data:`TIMEFRAMES`; inferred from the most common timestamp
    step when None. Naive timestamps are rejected (not assumed UTC), as are other zones.

    Raises DataError ("<source>: <problem>") for: no rows, missing columns, bad timestamp
    dtype/zone, duplicate timestamps (count + first), unsorted rows (count + first), a data
    step different from the given timeframe, timestamps not on the timeframe's grid, gaps
    (count, missing candles, first gap) unless ``allow_gaps``, NaN/inf in OHLC or volume,
    non-positive prices, high < low, high < max(open, close), low > min(open, close),
    negative volume, and the sanity limits: a price outside [:data:`MIN_PRICE`,
    :data:`MAX_PRICE`], high / low or open vs the previous close beyond :data:`MAX_BAR_RATIO`,
    volume above :data:`MAX_VOLUME`. Zero volume is valid (mark-price candles). ValueError for an unknown
    ``timeframe``.
    """
    if timeframe is not None:
        timeframe_to_ms(timeframe)
    _check_columns(df, CANDLE_COLUMNS, source)
    ts = timestamps_to_ms(df["timestamp"], source)
    _check_order(ts, source)
    if timeframe is None:
        timeframe = infer_timeframe(ts, source)
    elif len(ts) >= 2 and (mode := _mode_step(ts)) != _TF_MS[timeframe]:
        have = _MS_TF.get(mode, f"{mode} ms")
        raise DataError(f"{source}: most common timestamp step is {have} but timeframe {timeframe} was requested")
    step = _TF_MS[timeframe]
    off = ts % step != 0
    if off.any():
        r = _first_row(off)
        raise DataError(f"{source}: {int(off.sum())} timestamp(s) not on the {timeframe} grid, first {_fmt(ts[r])} "
                        f"at row {r}")
    if not allow_gaps and len(ts) >= 2:
        d = np.diff(ts)
        gaps = d != step
        if gaps.any():
            r = _first_row(gaps)
            missing = int((d[gaps] // step - 1).sum())
            raise DataError(f"{source}: {int(gaps.sum())} gap(s) ({missing} missing {timeframe} candle(s)), "
                            f"first after {_fmt(ts[r])} (next candle {_fmt(ts[r + 1])}, row {r + 1})")
    cols = {c: _float_column(df, c, source) for c in CANDLE_COLUMNS[1:]}
    for c, v in cols.items():
        bad = ~np.isfinite(v)
        if bad.any():
            r = _first_row(bad)
            kind = "NaN" if np.isnan(v[r]) else "infinite"
            raise DataError(f"{source}: {int(bad.sum())} NaN/infinite value(s) in {c}, first {kind} at {_fmt(ts[r])} "
                            f"(row {r})")
    o, h, lo, c, v = (cols[k] for k in ("open", "high", "low", "close", "volume"))
    prev_close = np.concatenate(([np.nan], c[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        jump = np.maximum(o / prev_close, prev_close / o)
        spread = h / lo
    checks = (
        ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "non-positive price"),
        (h < lo, "high < low"),
        (h < np.maximum(o, c), "high < max(open, close)"),
        (lo > np.minimum(o, c), "low > min(open, close)"),
        (v < 0, "negative volume"),
        ((h > MAX_PRICE) | (lo < MIN_PRICE), f"a price outside [{MIN_PRICE:g}, {MAX_PRICE:g}] USDT"),
        (spread > MAX_BAR_RATIO, f"high / low above {MAX_BAR_RATIO:g} (a {MAX_BAR_RATIO:g}x move inside one candle)"),
        (jump > MAX_BAR_RATIO, f"open {MAX_BAR_RATIO:g}x away from the previous close"),
        (v > MAX_VOLUME, f"volume above {MAX_VOLUME:g}"),
    )
    for mask, what in checks:
        if mask.any():
            r = _first_row(mask)
            raise DataError(f"{source}: {int(mask.sum())} row(s) with {what}, first at {_fmt(ts[r])} (row {r}: "
                            f"o={o[r]} h={h[r]} l={lo[r]} c={c[r]} v={v[r]})")
    out = pd.DataFrame({"timestamp": pd.to_datetime(ts, unit="ms", utc=True).as_unit("ms"), **cols})
    out.attrs["timeframe"] = timeframe
    return out


def validate_funding(df: pd.DataFrame, source: str = "<frame>") -> pd.DataFrame:
    """Validate a funding-rate frame and return a clean copy.

    Input: columns ``timestamp`` (tz-aware UTC, settlement time) and ``funding_rate``
    (fraction per funding interval, positive = longs pay shorts); extra columns dropped.
    Output: RangeIndex, ``timestamp`` as ``datetime64[ms, UTC]`` rounded to the nearest
    second (exchange settlement stamps can be a few ms off), ``funding_rate`` float64.

    Raises DataError for: no rows, missing columns, bad timestamp dtype/zone, duplicate or
    unsorted timestamps (after rounding), NaN/inf rates, |rate| above
    :data:`MAX_ABS_FUNDING_RATE` (a fraction per interval).
    """
    _check_columns(df, FUNDING_COLUMNS, source)
    ts = timestamps_to_ms(df["timestamp"], source, round_to_second=True)
    _check_order(ts, source)
    rate = _float_column(df, "funding_rate", source)
    bad = ~np.isfinite(rate)
    if bad.any():
        r = _first_row(bad)
        raise DataError(f"{source}: {int(bad.sum())} NaN/infinite funding_rate value(s), "
                        f"first at {_fmt(ts[r])} (row {r})")
    big = np.abs(rate) > MAX_ABS_FUNDING_RATE
    if big.any():
        r = _first_row(big)
        raise DataError(f"{source}: {int(big.sum())} funding_rate value(s) beyond +/-{MAX_ABS_FUNDING_RATE:g} per "
                        f"interval ({MAX_ABS_FUNDING_RATE:.0%}; venues cap funding at a few percent), first {rate[r]:g} "
                        f"at {_fmt(ts[r])} (row {r})")
    return pd.DataFrame({"timestamp": pd.to_datetime(ts, unit="ms", utc=True).as_unit("ms"), "funding_rate": rate})
