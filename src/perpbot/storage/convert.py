"""Conversions between pandas frames / Python values and ledger rows, plus the ledger's errors.

Holds no database state: frame -> list of row dicts (vectorised, ready for an executemany),
rows -> frame with stable dtypes, JSON-safe conversion of configs and metrics, and redaction
of secrets. ``perpbot.storage.ledger`` uses it; the error classes are re-exported there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd


class LedgerError(Exception):
    """Base class of everything the ledger raises on purpose."""

    def __str__(self) -> str:  # KeyError subclasses would otherwise repr-quote the message
        return str(self.args[0]) if self.args else ""


class UnknownRunError(LedgerError, KeyError):
    """The run id is not in the ledger (also a ``KeyError``)."""


class LedgerInputError(LedgerError, ValueError):
    """A frame, value or field given to the ledger is unusable (also a ``ValueError``)."""


SECRET_MARKERS = ("api_key", "apikey", "secret", "passphrase", "password", "token")
REDACTED = "***"


def redact(config: Any) -> Any:
    """Return a copy of ``config`` with secret values replaced by ``"***"``, recursively.

    A key is secret when its lower-cased name (``-`` read as ``_``) contains one of
    :data:`SECRET_MARKERS` (api_key, secret, passphrase, password, token ...); values of type
    pydantic ``SecretStr``/``SecretBytes`` are redacted under any key. Dicts and
    lists/tuples are walked; the input is never modified.
    """
    if isinstance(config, Mapping):
        out = {}
        for key, value in config.items():
            name = str(key).lower().replace("-", "_")
            secret = any(m in name for m in SECRET_MARKERS) and value is not None
            out[key] = REDACTED if secret or _is_secret_type(value) else redact(value)
        return out
    if isinstance(config, (list, tuple)):
        return [REDACTED if _is_secret_type(v) else redact(v) for v in config]
    return config


def _is_secret_type(value: Any) -> bool:
    return type(value).__name__ in ("SecretStr", "SecretBytes")


def to_jsonable(obj: Any, path: str = "value") -> Any:
    """Convert ``obj`` to plain JSON types (dict/list/str/int/float/bool/None).

    numpy / pandas scalars become Python scalars, arrays and Series become lists, NaN /
    ±inf / ``pd.NA`` / ``NaT`` become ``None`` (JSON has no NaN), datetimes become ISO 8601
    strings (tz kept), timedeltas seconds (float), Decimal float, Enum its value, paths str.
    Dict keys become str. Anything else raises :class:`LedgerInputError` naming ``path``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, Enum):
        return to_jsonable(obj.value, path)
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating, Decimal)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, (timedelta, pd.Timedelta, np.timedelta64)):
        return pd.Timedelta(obj).total_seconds()
    if isinstance(obj, np.datetime64):
        return None if np.isnat(obj) else pd.Timestamp(obj).isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, f"{path}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (np.ndarray, pd.Series, pd.Index)):
        obj = obj.tolist()
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    raise LedgerInputError(f"{path}: cannot store a {type(obj).__name__} as JSON ({obj!r:.80})")


# ---------------------------------------------------------------- frame -> rows


@dataclass(frozen=True)
class Col:
    """One column of a ledger table as seen from a frame.

    ``kind``: time | float | int | str | bool; ``source``: the frame's column name when it
    differs from the table's (e.g. trade_id -> trade_no); ``aliases``: other accepted names.
    """

    name: str
    kind: str
    required: bool = False
    source: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def frame_name(self) -> str:
        return self.source or self.name


def utc_index(values: Any, what: str) -> pd.DatetimeIndex:
    """``values`` as a tz-aware UTC DatetimeIndex; naive (unless all missing) or unparsable
    values raise LedgerInputError."""
    try:
        idx = pd.DatetimeIndex(values)
    except (TypeError, ValueError) as exc:
        raise LedgerInputError(f"{what}: not timestamps ({exc})") from None
    if idx.tz is None:
        if idx.isna().all():  # nothing but NaT / None: no time zone to lose
            return idx.tz_localize("UTC")
        raise LedgerInputError(f"{what}: timestamps are naive; give them a time zone (UTC)")
    return idx.tz_convert("UTC")


def utc_timestamp(value: Any, what: str) -> datetime:
    """One tz-aware value as a UTC ``datetime``; naive raises LedgerInputError."""
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise LedgerInputError(f"{what}: missing timestamp")
    if ts.tzinfo is None:
        raise LedgerInputError(f"{what}: timestamp {value!r} is naive; give it a time zone (UTC)")
    return ts.tz_convert("UTC").to_pydatetime()


def _column_values(values: Any, col: Col, what: str) -> np.ndarray | pd.DatetimeIndex:
    """One column as a UTC DatetimeIndex (time) or an object array of Python values (None = missing)."""
    label = f"{what} column {col.frame_name!r}"
    if col.kind == "time":
        out: Any = utc_index(values, label)
        missing = np.asarray(out.isna())
    elif col.kind in ("float", "int"):
        if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":  # already numbers: no pandas
            arr = values.astype(float)
        elif isinstance(values, np.ndarray) and values.dtype == object and all(v is None for v in values):
            arr = np.full(len(values), np.nan)  # an absent optional column
        else:
            try:
                arr = pd.to_numeric(pd.Series(values), errors="raise").to_numpy(dtype=float, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise LedgerInputError(f"{label}: not numeric ({exc})") from None
        missing = np.isnan(arr)
        if col.kind == "int":
            if not np.array_equal(arr[~missing], np.round(arr[~missing])):
                raise LedgerInputError(f"{label}: has non-integer values")
            out = np.where(missing, 0, arr).astype(np.int64).astype(object)
        else:
            out = arr.astype(object)
        out[missing] = None
    elif col.kind == "str":
        ser = pd.Series(values, dtype=object)
        missing = ser.isna().to_numpy()
        out = ser.map(str).to_numpy(dtype=object, copy=True)  # pandas CoW views are read-only
        out[missing] = None
    elif col.kind == "bool":
        ser = pd.Series(values, dtype=object)
        missing = ser.isna().to_numpy()
        out = np.array([None if m else bool(v) for v, m in zip(ser, missing)], dtype=object)
    else:  # pragma: no cover - programming error
        raise AssertionError(col.kind)
    if col.required and missing.any():
        raise LedgerInputError(f"{label}: has missing values but is required")
    return out


def frame_to_columns(df: Any, cols: Sequence[Col], what: str) -> dict[str, Any]:
    """Convert a DataFrame's columns for ``cols``: {table column: values}.

    Values: time -> tz-aware UTC ``DatetimeIndex``; others -> object array of Python
    int/float/str/bool with None where missing (NaN counts as missing). A ``time`` column may
    also be given as the frame's DatetimeIndex; absent optional columns are all None; a missing
    required column, missing required values, naive timestamps or non-numeric numbers raise
    :class:`LedgerInputError`.
    """
    if not isinstance(df, pd.DataFrame):
        raise LedgerInputError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    out: dict[str, Any] = {}
    for col in cols:
        found = next((n for n in (col.frame_name, *col.aliases) if n in df.columns), None)
        if found is not None:
            values = df[found].to_numpy()
        elif col.name == "time" and isinstance(df.index, pd.DatetimeIndex):
            values = df.index
        elif col.required:
            raise LedgerInputError(f"{what}: missing required column {col.frame_name!r} "
                                   f"(has {list(map(str, df.columns))})")
        else:
            values = np.full(len(df), None, dtype=object)
        out[col.name] = _column_values(values, col, what)
    return out


def py_times(idx: pd.DatetimeIndex) -> np.ndarray:
    """UTC DatetimeIndex -> object array of tz-aware ``datetime`` (None for NaT)."""
    out = idx.to_pydatetime().astype(object)
    out[np.asarray(idx.isna())] = None
    return out


def sqlite_times(idx: pd.DatetimeIndex) -> list[str | None]:
    """UTC DatetimeIndex -> list of SQLAlchemy's SQLite DATETIME text
    ``YYYY-MM-DD HH:MM:SS.ffffff`` (None for NaT), vectorised (no per-row Python)."""
    utc = idx.tz_convert("UTC")
    if len(utc) and not (1000 <= utc.min().year and utc.max().year <= 9999):
        raise LedgerInputError(f"timestamps {utc.min()} .. {utc.max()} are outside years 1000-9999")
    text = np.datetime_as_string(utc.tz_localize(None).to_numpy("datetime64[us]"), unit="us").astype("<U26")
    text.view(np.uint32).reshape(len(text), 26)[:, 10] = ord(" ")  # "T" -> " " in every row at once
    out = text.tolist()
    for i in np.flatnonzero(np.asarray(idx.isna())):
        out[i] = None
    return out


def frame_to_rows(df: Any, cols: Sequence[Col], what: str, fixed: Mapping[str, Any] | None = None,
                  ) -> list[dict[str, Any]]:
    """Row dicts (times as tz-aware ``datetime``) for ``cols`` plus the ``fixed`` values
    (e.g. run_id), for SQLAlchemy inserts of small frames; see :func:`frame_to_columns`."""
    columns = frame_to_columns(df, cols, what)
    keys = [*(fixed or {}), *columns]
    arrays: list[Iterable[Any]] = [[v] * len(df) for v in (fixed or {}).values()]
    arrays += [py_times(v) if isinstance(v, pd.DatetimeIndex) else v for v in columns.values()]
    return [dict(zip(keys, vals)) for vals in zip(*arrays)]


def db_rows_to_frame(rows: Sequence[Sequence[Any]], cols: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Build a frame from result rows; ``cols`` gives (name, kind) per row position.

    dtypes: time -> ``datetime64[us, UTC]``; float -> float64 (NULL -> NaN); int -> int64, or
    pandas nullable ``Int64`` when some are NULL; str -> pandas string; bool -> bool;
    json -> object (dicts).
    """
    columns = list(zip(*rows)) if rows else [()] * len(cols)
    data: dict[str, Any] = {}
    for (name, kind), values in zip(cols, columns):
        if kind == "time":
            data[name] = _times(values)
        elif kind == "float":
            data[name] = np.array(values, dtype=float)
        elif kind == "int":
            data[name] = (pd.array(values, dtype="Int64") if any(v is None for v in values)
                          else np.array(values, dtype=np.int64))
        elif kind == "str":
            data[name] = pd.array(values, dtype="str")
        elif kind == "bool":
            data[name] = np.array(values, dtype=bool)
        else:
            data[name] = np.empty(len(values), dtype=object)
            for i, v in enumerate(values):
                data[name][i] = v
    return pd.DataFrame(data)


def _times(values: Sequence[Any]) -> pd.DatetimeIndex:
    """Read-back timestamps -> UTC DatetimeIndex: SQLite's naive-UTC text is parsed by numpy
    in C; driver datetimes (PostgreSQL, any offset) by pandas."""
    if not any(isinstance(v, datetime) for v in values):
        return pd.DatetimeIndex(np.array(values, dtype="datetime64[us]")).tz_localize("UTC")
    return pd.to_datetime(list(values), utc=True, format="ISO8601").as_unit("us")


# ---------------------------------------------------------------- trades -> orders and fills

#: Exit reason label -> type of the derived exit order (trigger price: stop_loss / take_profit).
EXIT_ORDER_TYPE = {"stop_loss": "stop", "trailing_stop": "stop", "take_profit": "take_profit"}


def label(value: Any, labels: Mapping[int, str], what: str) -> str:
    """A code's label: a known label (any case) as is, an integer code (1, "1", 1.0) mapped
    through ``labels``; anything else raises LedgerInputError naming ``what``."""
    allowed = tuple(labels.values())
    if isinstance(value, str) and value.lower() in allowed:
        return value.lower()
    try:
        return labels[int(float(value))]
    except (KeyError, TypeError, ValueError, OverflowError):
        raise LedgerInputError(f"{what}: {value!r} is not one of {allowed} (or their codes)") from None


def split_fees(fees: float, qty: float, entry_price: float, exit_price: float) -> tuple[float, float]:
    """Split a round trip's ``fees`` (USDT) into (entry fee, exit fee) by notional.

    entry fee = fees × entry notional / (entry notional + exit notional), notional = qty × price
    (with the same fee rate on both legs that is each leg's own fee). The larger leg is
    computed that way and the smaller one as ``fees - larger``, which is exact in floating
    point (Sterbenz lemma: larger >= fees / 2), so ``entry + exit == fees`` exactly.
    """
    en, ex = abs(qty * entry_price), abs(qty * exit_price)
    w = en / (en + ex) if en + ex > 0 else 0.5
    if w >= 0.5:
        entry = fees * w
        return float(entry), float(fees - entry)
    exit_ = fees * (1.0 - w)
    return float(fees - exit_), float(exit_)


def trade_rows(trades: Any, cols: Sequence[Col], exit_labels: Mapping[int, str]) -> list[dict[str, Any]]:
    """Trades frame -> trade row dicts (side long|short; exit_reason: an integer code becomes its
    label, text is kept as given) with a private
    ``_fees`` = (entry fee, exit fee): the ``entry_fee``/``exit_fee`` columns when given, else
    :func:`split_fees` of ``fees``; a trade without exit puts all ``fees`` on its entry."""
    rows = frame_to_rows(trades, cols, "trades")
    given = [n for n in ("entry_fee", "exit_fee") if n in trades.columns]
    if len(given) == 1:
        raise LedgerInputError(f"trades: has {given[0]!r} without its pair; give entry_fee and exit_fee or neither")
    legs = frame_to_rows(trades, [Col(n, "float", True) for n in given], "trades") if given else None
    for i, row in enumerate(rows):
        row["side"] = label(row["side"], {1: "long", -1: "short"}, "trades side")
        reason = row["exit_reason"]
        if reason is not None and reason.lstrip("-").replace(".", "", 1).isdigit():  # a code, not a label
            row["exit_reason"] = label(reason, exit_labels, "trades exit_reason")
        if legs is not None:
            row["_fees"] = (legs[i]["entry_fee"], legs[i]["exit_fee"])
        elif row["fees"] is None:
            raise LedgerInputError(f"trades: trade {row['trade_no']} has no fees (nor entry_fee/exit_fee)")
        elif row["exit_time"] is None:
            row["_fees"] = (row["fees"], None)
        else:
            row["_fees"] = split_fees(row["fees"], row["qty"], row["entry_price"], row["exit_price"])
    return rows


def orders_and_fills(rows: Sequence[dict[str, Any]], run_id: int) -> tuple[list[dict], list[dict]]:
    """Entry and exit order + fill of each trade row (see ``Ledger.record_trades``); pops
    ``_fees``. Fills come in the same order as orders, without ``order_id`` yet."""
    orders: list[dict[str, Any]] = []
    fills: list[dict[str, Any]] = []
    for r in rows:
        long, no = r["side"] == "long", r["trade_no"]
        entry_fee, exit_fee = r.pop("_fees")
        legs = [("open", r["entry_time"], "buy" if long else "sell", "market", None, False, "entry",
                 r["entry_price"], entry_fee)]
        if r["exit_time"] is not None:
            kind = EXIT_ORDER_TYPE.get(r["exit_reason"], "market")
            trigger = {"stop_loss": r["stop_loss"], "take_profit": r["take_profit"]}.get(r["exit_reason"])
            legs.append(("close", r["exit_time"], "sell" if long else "buy", kind, trigger, True,
                         r["exit_reason"], r["exit_price"], exit_fee))
        for tag, time, side, kind, trigger, reduce_only, reason, fill_price, fee in legs:
            orders.append(dict(run_id=run_id, client_order_id=f"pb{run_id}-{no}-{tag}", exchange_order_id=None,
                               time=time, side=side, type=kind, qty=r["qty"], price=trigger,
                               reduce_only=reduce_only, status="filled", reason=reason, trade_no=no))
            fills.append(dict(run_id=run_id, time=time, side=side, qty=r["qty"], price=fill_price,
                              fee=0.0 if fee is None else fee, liquidity="taker"))
    return orders, fills
