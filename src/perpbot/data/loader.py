"""Loading candle and funding-rate Parquet files into validated pandas frames.

Reading is pyarrow (through pandas); what counts as valid data is defined once in
:mod:`perpbot.data.validate`. Every failure is a :class:`DataError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from perpbot.data.validate import (
    CANDLE_COLUMNS,
    FUNDING_COLUMNS,
    DataError,
    validate_candles,
    validate_funding,
)

__all__ = ["load_candles", "load_funding"]


def _read_parquet(path: str | Path, columns: tuple[str, ...]) -> tuple[pd.DataFrame, str]:
    p = Path(path)
    source = str(p)
    if not p.exists():
        raise DataError(f"{source}: file not found")
    if not p.is_file():
        raise DataError(f"{source}: not a file")
    try:
        import pyarrow.parquet as pq

        schema_names = pq.read_schema(p).names
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for corrupt or truncated files
        raise DataError(f"{source}: unreadable Parquet file ({type(exc).__name__}: {_one_line(exc)})") from exc
    missing = [c for c in columns if c not in schema_names]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}; have {', '.join(schema_names)}")
    try:
        df = pd.read_parquet(p, columns=list(columns))
    except Exception as exc:
        raise DataError(f"{source}: unreadable Parquet file ({type(exc).__name__}: {_one_line(exc)})") from exc
    return df, source


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200]


def load_candles(path: str | Path, timeframe: str | None = None, allow_gaps: bool = False) -> pd.DataFrame:
    """Load an OHLCV candle Parquet file (trade or mark-price candles) and validate it.

    Parameters
    ----------
    path:
        Parquet file with columns ``timestamp`` (tz-aware UTC, candle OPEN time), ``open``,
        ``high``, ``low``, ``close`` (USDT) and ``volume`` (base asset; 0 for mark-price
        candles). Extra columns are ignored.
    timeframe:
        One of :data:`~perpbot.data.validate.TIMEFRAMES`. When None it is inferred from the
        most common timestamp step; when given and the data's step differs, DataError.
    allow_gaps:
        Accept missing candles (the frame is still sorted, unique and on the timeframe grid).

    Returns
    -------
    DataFrame with a RangeIndex and columns ``timestamp`` (``datetime64[ms, UTC]``), ``open``,
    ``high``, ``low``, ``close``, ``volume`` (float64); ``attrs["timeframe"]`` holds the
    timeframe.

    Raises
    ------
    DataError
        "<path>: <problem>" for a missing file, unreadable/corrupt Parquet, missing columns,
        naive (not assumed UTC: rejected) or non-UTC timestamps, and every check of
        :func:`~perpbot.data.validate.validate_candles` (duplicates, unsorted rows, gaps,
        NaN, inconsistent OHLC, non-positive prices, negative volume).
    ValueError
        Unknown ``timeframe``.
    """
    df, source = _read_parquet(path, CANDLE_COLUMNS)
    return validate_candles(df, timeframe, source=source, allow_gaps=allow_gaps)


def load_funding(path: str | Path) -> pd.DataFrame:
    """Load a funding-rate Parquet file and validate it.

    Input columns: ``timestamp`` (tz-aware UTC settlement time) and ``funding_rate``
    (fraction per funding interval, e.g. 8 h; positive = longs pay shorts).

    Returns a RangeIndex frame: ``timestamp`` (``datetime64[ms, UTC]``, rounded to the
    second) and ``funding_rate`` (float64).

    Raises DataError "<path>: <problem>" for a missing/unreadable file, missing columns,
    bad timestamps, duplicate or unsorted timestamps, NaN rates.
    """
    df, source = _read_parquet(path, FUNDING_COLUMNS)
    return validate_funding(df, source=source)
