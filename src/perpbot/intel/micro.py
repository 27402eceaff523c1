"""Micro-metrics from 1-minute candles: per-symbol bounded history → ATR(1m) and a volume profile.

:class:`MicroMetrics` keeps, per symbol, bounded deques (``retention_minutes`` long, default
720 = 12 h) of the open time, close, high, low, volume and true range of closed 1-minute
candles. :meth:`MicroMetrics.snapshot` computes from them the ATR(1m) (Wilder,
:func:`perpbot.features.true_range.atr_wilder`) and the volume profile
(:func:`perpbot.features.volume_profile.volume_profile`: POC, HVN, LVN, value area).

Persistence: :meth:`MicroMetrics.save` writes every symbol's history to one Parquet file
(``state_file``) atomically — temp file in the same folder, fsync, rename
(:func:`perpbot.data.store.write_parquet_atomic`) — so a crash leaves the previous file
whole; :meth:`MicroMetrics.maybe_save` does it at most every ``save_interval`` seconds;
:meth:`MicroMetrics.load` reads it back at start (a missing or unreadable file starts cold,
with a warning), so a restart is warm. Loading keeps only the last ``retention_minutes``.

Candles are rows ``[open time ms UTC, open, high, low, close, volume (base asset)]`` (ccxt
OHLCV). Only candles newer than the newest held are appended; the caller passes closed
candles only (:class:`~perpbot.intel.refresh.MicroRefresher` drops the forming one).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perpbot.data.store import write_parquet_atomic
from perpbot.features.true_range import atr_wilder, true_range_one
from perpbot.features.volume_profile import VolumeProfile, volume_profile
from perpbot.logs import get_logger

__all__ = ["MicroMetrics", "MicroSnapshot"]

log = get_logger("perpbot.intel")
MINUTE_MS = 60_000
_COLUMNS = ("symbol", "timestamp", "high", "low", "close", "volume", "true_range")


@dataclass(frozen=True, eq=False)
class MicroSnapshot:
    """Micro-metrics of one symbol. Prices in quote currency; ``atr_pct`` percent of ``last_close``."""

    symbol: str
    last_time_ms: int                # open time of the newest candle, ms UTC
    last_close: float
    minutes: int                     # candles held
    atr: float                       # Wilder ATR(atr_period) of 1m candles; NaN with too few candles
    atr_period: int
    profile: VolumeProfile | None    # None with no volume

    @property
    def atr_pct(self) -> float:
        return self.atr / self.last_close * 100.0 if self.last_close > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "last_time_ms": self.last_time_ms, "last_close": self.last_close,
                "minutes": self.minutes, "atr": None if math.isnan(self.atr) else self.atr,
                "atr_pct": None if math.isnan(self.atr_pct) else self.atr_pct, "atr_period": self.atr_period,
                "profile": None if self.profile is None else self.profile.to_dict()}


class _Series:
    __slots__ = ("time", "high", "low", "close", "volume", "tr")

    def __init__(self, maxlen: int) -> None:
        self.time: deque[int] = deque(maxlen=maxlen)
        self.high: deque[float] = deque(maxlen=maxlen)
        self.low: deque[float] = deque(maxlen=maxlen)
        self.close: deque[float] = deque(maxlen=maxlen)
        self.volume: deque[float] = deque(maxlen=maxlen)
        self.tr: deque[float] = deque(maxlen=maxlen)

    def append(self, t: int, h: float, lo: float, c: float, v: float, tr: float) -> None:
        self.time.append(t)
        self.high.append(h)
        self.low.append(lo)
        self.close.append(c)
        self.volume.append(v)
        self.tr.append(tr)

    def trim_before(self, cutoff_ms: int) -> None:
        while self.time and self.time[0] < cutoff_ms:
            for d in (self.time, self.high, self.low, self.close, self.volume, self.tr):
                d.popleft()


class MicroMetrics:
    """Per-symbol 1m history and its micro-metrics (module docstring).

    Args:
        retention_minutes: candles (and minutes of history) kept per symbol.
        buckets, value_area, hvn_mult, lvn_mult: volume-profile parameters (``value_area`` a fraction).
        atr_period: ATR(1m) period, candles.
        state_file: Parquet file for :meth:`save` / :meth:`load` (None: no persistence).
        save_interval: minimum seconds between two writes by :meth:`maybe_save`.
        clock: monotonic seconds (for ``save_interval``).
    """

    def __init__(self, *, retention_minutes: int = 720, buckets: int = 24, value_area: float = 0.70,
                 hvn_mult: float = 1.5, lvn_mult: float = 0.5, atr_period: int = 14,
                 state_file: str | Path | None = None, save_interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if retention_minutes < 2 or buckets < 1 or atr_period < 1 or not 0 < value_area <= 1 or save_interval < 0:
            raise ValueError("retention_minutes >= 2, buckets >= 1, atr_period >= 1, 0 < value_area <= 1 and "
                             "save_interval >= 0 are required")
        self.retention_minutes = int(retention_minutes)
        self.buckets = int(buckets)
        self.value_area = float(value_area)
        self.hvn_mult, self.lvn_mult = float(hvn_mult), float(lvn_mult)
        self.atr_period = int(atr_period)
        self.state_file = Path(state_file) if state_file is not None else None
        self.save_interval = float(save_interval)
        self._clock = clock
        self._series: dict[str, _Series] = {}
        self._dirty = False
        self._last_save: float | None = None

    # ------------------------------------------------------------------------- updates --
    def symbols(self) -> list[str]:
        return list(self._series)

    @property
    def dirty(self) -> bool:
        """True when something changed since the last save or load."""
        return self._dirty

    def last_time_ms(self, symbol: str) -> int | None:
        s = self._series.get(symbol)
        return s.time[-1] if s and s.time else None

    def update(self, symbol: str, candles: Iterable[Sequence[Any]]) -> int:
        """Append the closed 1m ``candles`` of ``symbol`` newer than the newest held; returns how
        many were appended. Rows with a non-finite or non-positive price, or high < low, are
        skipped with a warning. The true range uses the previous held close; the first candle
        of a symbol (or the first after a gap longer than the retention, which starts the
        history anew) has none and holds NaN, as TA-Lib's ``TRANGE`` does."""
        s = self._series.get(symbol)
        if s is None:
            s = self._series[symbol] = _Series(self.retention_minutes)
        added = 0
        for row in sorted(candles, key=lambda r: r[0]):
            t = int(row[0])
            h, lo, c = float(row[2]), float(row[3]), float(row[4])
            v = float(row[5]) if row[5] is not None else 0.0
            if s.time and t <= s.time[-1]:
                continue
            if not all(math.isfinite(x) for x in (h, lo, c, v)) or min(h, lo, c) <= 0 or h < lo or v < 0:
                log.warning("micro_bad_candle", symbol=symbol, time_ms=t)
                continue
            if s.time and t - s.time[-1] > self.retention_minutes * MINUTE_MS:
                s = self._series[symbol] = _Series(self.retention_minutes)
            tr = true_range_one(h, lo, s.close[-1]) if s.close else math.nan
            s.append(t, h, lo, c, v, tr)
            added += 1
        if added:
            s.trim_before(s.time[-1] - (self.retention_minutes - 1) * MINUTE_MS)
            self._dirty = True
        return added

    def forget(self, symbol: str) -> None:
        if self._series.pop(symbol, None) is not None:
            self._dirty = True

    # ------------------------------------------------------------------------ metrics --
    def snapshot(self, symbol: str) -> MicroSnapshot | None:
        """Micro-metrics of ``symbol`` or None when nothing is held for it."""
        s = self._series.get(symbol)
        if s is None or not s.time:
            return None
        tr = np.fromiter(s.tr, dtype=np.float64, count=len(s.tr))
        tr = tr[np.isfinite(tr)]          # a symbol's first candle has no previous close: no true range
        atr = atr_wilder(tr, self.atr_period) if len(tr) >= self.atr_period else math.nan
        close = np.fromiter(s.close, dtype=np.float64, count=len(s.close))
        vol = np.fromiter(s.volume, dtype=np.float64, count=len(s.volume))
        profile = None
        if vol.sum() > 0:
            profile = volume_profile(close, vol, self.buckets, self.value_area, self.hvn_mult, self.lvn_mult)
        return MicroSnapshot(symbol=symbol, last_time_ms=s.time[-1], last_close=s.close[-1], minutes=len(s.time),
                             atr=atr, atr_period=self.atr_period, profile=profile)

    # -------------------------------------------------------------------- persistence --
    def to_frame(self) -> pd.DataFrame:
        """Every symbol's history as one frame (columns: symbol, timestamp ms, high, low, close,
        volume, true_range)."""
        parts = [pd.DataFrame({"symbol": sym, "timestamp": list(s.time), "high": list(s.high), "low": list(s.low),
                               "close": list(s.close), "volume": list(s.volume), "true_range": list(s.tr)})
                 for sym, s in self._series.items() if s.time]
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype="float64") for c in _COLUMNS}).astype(
                {"symbol": "object", "timestamp": "int64"})
        return pd.concat(parts, ignore_index=True)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the state atomically to ``path`` (default ``state_file``); returns the path."""
        target = Path(path) if path is not None else self.state_file
        if target is None:
            raise ValueError("no state file configured")
        write_parquet_atomic(self.to_frame(), target)
        self._dirty = False
        self._last_save = self._clock()
        return target

    def maybe_save(self) -> bool:
        """Save when there is something new and ``save_interval`` s passed since the last save."""
        if self.state_file is None or not self._dirty:
            return False
        if self._last_save is not None and self._clock() - self._last_save < self.save_interval:
            return False
        self.save()
        return True

    def load(self, path: str | Path | None = None) -> int:
        """Replace the state with the file's (default ``state_file``); returns the number of
        symbols loaded. A missing file loads nothing; an unreadable one is logged and ignored."""
        source = Path(path) if path is not None else self.state_file
        if source is None or not source.exists():
            return 0
        try:
            df = pd.read_parquet(source)
            missing = set(_COLUMNS) - set(df.columns)
            if missing:
                raise ValueError(f"columns {sorted(missing)} missing")
        except Exception as exc:  # a torn or foreign file must not stop the bot
            log.warning("micro_state_unreadable", path=str(source), error=f"{type(exc).__name__}: {exc}"[:200])
            return 0
        self._series = {}
        for sym, g in df.sort_values(["symbol", "timestamp"]).groupby("symbol", sort=False):
            s = _Series(self.retention_minutes)
            s.time.extend(int(t) for t in g["timestamp"].to_numpy())
            for name, col in (("high", "high"), ("low", "low"), ("close", "close"), ("volume", "volume"),
                              ("tr", "true_range")):
                getattr(s, name).extend(g[col].to_numpy(dtype=np.float64).tolist())
            s.trim_before(s.time[-1] - (self.retention_minutes - 1) * MINUTE_MS)
            self._series[str(sym)] = s
        self._dirty = False
        return len(self._series)
