"""``--timerange`` (freqtrade's syntax) and ``--symbol`` of the data-using commands.

``--timerange START-END``: dates ``YYYYMMDD`` (00:00 UTC) or Unix seconds; either side may be
empty (``20250601-`` from June 1st, ``-20251201`` up to December 1st). START is inclusive, END
exclusive: ``20250601-20251201`` is the candles opened from 2025-06-01 00:00 to 2025-11-30
23:55 UTC (5m). A backtest, paper replay or report also loads the ``warmup_bars`` candles
before START (freqtrade's "startup candles"), so it can trade from START on; training uses
exactly the range. A malformed range or START >= END is a usage error (exit 2); a range that
holds no candle of the file is a data error (exit 1) naming the file's first and last candle.

``--symbol SOL/USDT:USDT`` (ccxt unified; ``SOLUSDT`` and ``SOL`` are read as the USDT-M
perpetual too) picks ``<ID>-<timeframe>.parquet``, ``<ID>-funding.parquet`` and
``<ID>-<tf>-mark.parquet`` in the folder of ``candles_file`` (the layout of ``../shared/data``).
A symbol without candles of the timeframe is a data error listing what the folder has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from perpbot.cli.common import UsageError, settings_for

_PART = r"(\d{8}|\d{10})?"
_RANGE = re.compile(rf"^{_PART}-{_PART}$")


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)`` in UTC; None = open."""

    start: pd.Timestamp | None
    end: pd.Timestamp | None
    text: str

    def __str__(self) -> str:
        return self.text


def _stamp(part: str, text: str) -> pd.Timestamp:
    try:
        if len(part) == 10:
            return pd.Timestamp(int(part), unit="s", tz="UTC")
        return pd.Timestamp(pd.to_datetime(part, format="%Y%m%d"), tz="UTC")
    except (ValueError, OverflowError):
        raise UsageError(f"--timerange {text!r}: {part} is not a date (YYYYMMDD) or Unix seconds") from None


def parse_timerange(text: str | None) -> TimeRange | None:
    """Parse ``START-END`` (see the module doc); None stays None. Raises UsageError (exit 2)."""
    if text is None:
        return None
    m = _RANGE.match(text.strip())
    if not m or not (m.group(1) or m.group(2)):
        raise UsageError(f"--timerange {text!r} is not START-END with dates YYYYMMDD, e.g. 20250601-20251201, "
                         "20250601- or -20251201")
    start = _stamp(m.group(1), text) if m.group(1) else None
    end = _stamp(m.group(2), text) if m.group(2) else None
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--timerange {text!r}: the start {start:%Y-%m-%d} is not before the end {end:%Y-%m-%d}")
    return TimeRange(start, end, text.strip())


def select(market, tr: TimeRange | None, warmup_bars: int = 0):
    """``market`` (:class:`perpbot.data.market.MarketData`) cut to ``tr`` with ``warmup_bars``
    candles before its start kept. Raises DataError when no candle lies in the range."""
    from perpbot.data import DataError

    if tr is None:
        return market
    times = pd.DatetimeIndex(market.candles["timestamp"])
    lo = 0 if tr.start is None else int(times.searchsorted(tr.start, side="left"))
    hi = len(times) if tr.end is None else int(times.searchsorted(tr.end, side="left"))
    if hi <= lo:
        raise DataError(f"{market.source}: --timerange {tr} holds no candle; the file has "
                        f"{times[0]:%Y-%m-%d %H:%M} to {times[-1]:%Y-%m-%d %H:%M} UTC")
    return market.slice(max(0, lo - int(warmup_bars)), hi)


def symbol_id(symbol: str) -> str:
    """The file id of a symbol: ``SOL/USDT:USDT`` / ``SOLUSDT`` -> ``SOLUSDT``; ``SOL`` -> ``SOLUSDT``."""
    base = symbol.split(":")[0].replace("/", "").replace("-", "").upper()
    return base if base.endswith(("USDT", "USDC", "USD")) else base + "USDT"


def unified(symbol: str) -> str:
    """``SOLUSDT`` / ``SOL`` -> ``SOL/USDT:USDT`` (a unified symbol is returned as is)."""
    if "/" in symbol:
        return symbol
    sid = symbol_id(symbol)
    return f"{sid[:-4]}/USDT:USDT"


def symbol_overrides(settings, symbol: str) -> dict[str, Any]:
    """Settings overrides (symbol and the three files) for ``--symbol``; DataError when the folder
    of ``candles_file`` has no candles of the symbol at the configured timeframe."""
    from perpbot.data import DataError

    folder = Path(settings.candles_file).parent
    sid, tf = symbol_id(symbol), settings.timeframe
    candles = folder / f"{sid}-{tf}.parquet"
    if not candles.exists():
        have = sorted({p.stem.split("-")[1] for p in folder.glob(f"{sid}-*.parquet") if p.stem.count("-") == 1}
                      - {"funding"})
        what = f"it has {sid} at {', '.join(have)} (set timeframe)" if have else "list-data shows what it has"
        raise DataError(f"{candles}: no {tf} candles of {sid} in {folder}; {what}")
    funding = folder / f"{sid}-funding.parquet"
    marks = sorted(folder.glob(f"{sid}-*-mark.parquet"))
    out: dict[str, Any] = {"symbol": unified(symbol), "candles_file": candles}
    if settings.funding:
        out["funding_file"] = funding if funding.exists() else "none"
        out["mark_file"] = marks[0] if marks else "none"
    return out


def data_settings(config: Optional[Path], symbol: str | None, **overrides):
    """:func:`perpbot.cli.common.settings_for` with ``--symbol`` applied (files of that symbol)."""
    s = settings_for(config, **overrides)
    if symbol is None:
        return s
    if overrides.get("candles_file") is not None:
        raise UsageError("--symbol picks the candles file; do not also give --candles")
    return settings_for(config, **{**overrides, **symbol_overrides(s, symbol)})


def market_for(settings, timerange: TimeRange | None, warmup: bool = True, candles_file=None):
    """The run's market data (:func:`perpbot.data.market.load_market_for`) cut to ``timerange``."""
    from perpbot.data.market import load_market_for

    market = load_market_for(settings, candles_file)
    return select(market, timerange, settings.warmup_bars if warmup else 0)
