"""The bot's own Parquet market-data store: file layout, reads, and atomic merge-appends.

Layout (one file per exchange / symbol / timeframe / kind)::

    <data_dir>/<exchange>/<SYMBOLID>-<tf>.parquet            trade candles
    <data_dir>/<exchange>/<SYMBOLID>-<tf>-mark.parquet       mark-price candles
    <data_dir>/<exchange>/<SYMBOLID>-<tf>-index.parquet      index-price candles
    <data_dir>/<exchange>/<SYMBOLID>-funding.parquet         funding-rate history
    <data_dir>/<exchange>/<SYMBOLID>-open-interest.parquet   open-interest snapshots

``SYMBOLID`` is the exchange's market id (``SOLUSDT`` for Bitget's ``SOL/USDT:USDT``), as in
``../shared/data/binance-usdm``. Columns and dtypes are those of the shared data, so
:func:`perpbot.data.load_candles` / :func:`perpbot.data.load_funding` read the files:
candles ``timestamp`` (``datetime64[ms, UTC]``, candle OPEN), ``open, high, low, close``
(USDT), ``volume`` (base asset, 0 for mark/index); funding ``timestamp``, ``funding_rate``
(fraction per interval); open interest ``timestamp``, ``open_interest`` (base asset),
``open_interest_value`` (USDT notional, NaN when the venue does not give it).

Every write goes to a temporary file in the same folder and is moved over the target with
``os.replace``, so a crash leaves either the old file or the new one, never a torn file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from perpbot.data.validate import (
    CANDLE_COLUMNS,
    FUNDING_COLUMNS,
    DataError,
    timeframe_to_ms,
    timestamps_to_ms,
    validate_candles,
    validate_funding,
)

__all__ = [
    "CANDLE_KINDS",
    "KINDS",
    "OPEN_INTEREST_COLUMNS",
    "append_rows",
    "first_timestamp_ms",
    "last_timestamp_ms",
    "read_store",
    "rows_to_frame",
    "store_path",
    "write_parquet_atomic",
]

#: Every kind the store holds, in download order.
KINDS = ("candles", "mark", "index", "funding", "open-interest")
#: Kinds that are OHLCV candle files (one per timeframe).
CANDLE_KINDS = ("candles", "mark", "index")
#: Columns of an open-interest snapshot file.
OPEN_INTEREST_COLUMNS = ("timestamp", "open_interest", "open_interest_value")

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown data kind {kind!r}; allowed: {', '.join(KINDS)}")


def store_path(data_dir: str | Path, exchange: str, symbol_id: str, timeframe: str | None, kind: str) -> Path:
    """Path of one store file (see the module docstring for the layout).

    ``symbol_id`` is the exchange's market id; characters other than letters, digits,
    ``_ . -`` are removed (``SOL/USDT:USDT`` -> ``SOLUSDTUSDT``). ``timeframe`` is required
    for candle kinds and ignored otherwise. Raises ValueError for an unknown kind or a
    candle kind without timeframe.
    """
    _check_kind(kind)
    sid = _SAFE.sub("", symbol_id)
    if not sid:
        raise ValueError(f"symbol id {symbol_id!r} has no usable characters for a file name")
    folder = Path(data_dir) / _SAFE.sub("", exchange)
    if kind in CANDLE_KINDS:
        if not timeframe:
            raise ValueError(f"kind {kind!r} needs a timeframe")
        suffix = "" if kind == "candles" else f"-{kind}"
        return folder / f"{sid}-{timeframe}{suffix}.parquet"
    return folder / f"{sid}-{kind}.parquet"


def _columns(kind: str) -> tuple[str, ...]:
    if kind in CANDLE_KINDS:
        return CANDLE_COLUMNS
    return FUNDING_COLUMNS if kind == "funding" else OPEN_INTEREST_COLUMNS


def read_store(path: str | Path, kind: str, timeframe: str | None = None) -> pd.DataFrame | None:
    """Read a store file, or None when it does not exist.

    Candle kinds are validated with gaps allowed (a venue can have holes); funding with
    :func:`~perpbot.data.validate_funding`. Raises DataError "<path>: <problem>" for an
    unreadable file or invalid content.
    """
    _check_kind(kind)
    p = Path(path)
    if not p.exists():
        return None
    try:
        df = pd.read_parquet(p, columns=list(_columns(kind)))
    except Exception as exc:
        raise DataError(f"{p}: unreadable Parquet file ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") \
            from exc
    return _clean(df, kind, timeframe, str(p))


def _clean(df: pd.DataFrame, kind: str, timeframe: str | None, source: str) -> pd.DataFrame:
    if kind in CANDLE_KINDS:
        return validate_candles(df, timeframe, source=source, allow_gaps=True)
    if kind == "funding":
        return validate_funding(df, source=source)
    ts = timestamps_to_ms(df["timestamp"], source)
    if (np.diff(ts) <= 0).any():
        raise DataError(f"{source}: open-interest timestamps are not strictly increasing")
    return pd.DataFrame({"timestamp": pd.to_datetime(ts, unit="ms", utc=True).as_unit("ms"),
                         "open_interest": df["open_interest"].to_numpy(dtype=np.float64),
                         "open_interest_value": df["open_interest_value"].to_numpy(dtype=np.float64)})


def last_timestamp_ms(path: str | Path) -> int | None:
    """Largest ``timestamp`` of a store file in ms UTC, or None when the file is absent/empty."""
    p = Path(path)
    if not p.exists():
        return None
    try:
        ts = pd.read_parquet(p, columns=["timestamp"])["timestamp"]
    except Exception as exc:
        raise DataError(f"{p}: unreadable Parquet file ({type(exc).__name__})") from exc
    if len(ts) == 0:
        return None
    return int(timestamps_to_ms(ts, str(p)).max())


def first_timestamp_ms(path: str | Path) -> int | None:
    """Smallest ``timestamp`` of a store file in ms UTC, or None when absent/empty."""
    p = Path(path)
    if not p.exists():
        return None
    ts = pd.read_parquet(p, columns=["timestamp"])["timestamp"]
    return None if len(ts) == 0 else int(timestamps_to_ms(ts, str(p)).min())


def atomic_write(path: str | Path, write) -> Path:
    """Write a file atomically: ``write(fh)`` into a temp file (binary) in the same folder, fsync,
    ``os.replace``; a crash leaves the old file or the new one, never a torn one. The folder is
    created when missing; the temp file is removed when ``write`` raises. Returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def write_parquet_atomic(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` (index dropped, zstd) to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda fh: df.to_parquet(fh, index=False, compression="zstd"))


def rows_to_frame(rows: list, kind: str) -> pd.DataFrame:
    """Raw rows to a store frame (not validated).

    Candle kinds: ``[ts_ms, open, high, low, close, volume]`` (ccxt OHLCV; a None volume
    becomes 0.0). Funding: ``(ts_ms, funding_rate)``. Open interest:
    ``(ts_ms, open_interest, open_interest_value)`` (None -> NaN).
    """
    _check_kind(kind)
    cols = _columns(kind)
    if not rows:
        empty: dict[str, object] = {c: np.array([], dtype=np.float64) for c in cols}
        empty["timestamp"] = pd.to_datetime(np.array([], dtype=np.int64), unit="ms", utc=True).as_unit("ms")
        return pd.DataFrame(empty)[list(cols)]
    arr = [list(r)[: len(cols)] for r in rows]
    ts = np.array([int(r[0]) for r in arr], dtype=np.int64)
    data: dict[str, object] = {"timestamp": pd.to_datetime(ts, unit="ms", utc=True).as_unit("ms")}
    for j, c in enumerate(cols[1:], start=1):
        fill = 0.0 if (kind in CANDLE_KINDS and c == "volume") else np.nan
        data[c] = np.array([fill if r[j] is None else float(r[j]) for r in arr], dtype=np.float64)
    return pd.DataFrame(data)


def append_rows(path: str | Path, new: pd.DataFrame, kind: str, timeframe: str | None = None) -> int:
    """Merge ``new`` rows into the store file at ``path`` atomically; return rows added.

    Rows whose timestamp is already stored are ignored (the stored value is kept), so
    repeating a download never duplicates. The merged frame is sorted and validated
    (candles: :func:`~perpbot.data.validate_candles` with gaps allowed and the given
    ``timeframe``; funding: :func:`~perpbot.data.validate_funding`); nothing is written when
    no row is new or validation fails (DataError naming the file).
    """
    _check_kind(kind)
    if kind in CANDLE_KINDS and timeframe is not None:
        timeframe_to_ms(timeframe)
    if new is None or len(new) == 0:
        return 0
    p = Path(path)
    old = read_store(p, kind, timeframe)
    new_ts = timestamps_to_ms(new["timestamp"], str(p), round_to_second=(kind == "funding"))
    new = new.assign(timestamp=pd.to_datetime(new_ts, unit="ms", utc=True).as_unit("ms"))
    new = new.drop_duplicates("timestamp", keep="last")
    if old is not None and len(old):
        old_ts = timestamps_to_ms(old["timestamp"], str(p))
        new = new[~np.isin(timestamps_to_ms(new["timestamp"], str(p)), old_ts)]
        if len(new) == 0:
            return 0
        merged = pd.concat([old, new[list(_columns(kind))]], ignore_index=True)
    else:
        merged = new[list(_columns(kind))]
    merged = merged.sort_values("timestamp", kind="stable").reset_index(drop=True)
    clean = _clean(merged, kind, timeframe, str(p))
    write_parquet_atomic(clean, p)
    return int(len(new))
