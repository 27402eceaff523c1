"""Simulated exchange for paper trading: one account, fed one closed candle at a time.

It runs the same compiled loop as the backtester (:func:`perpbot.sim.kernel.run_bars`)
on one bar per call, over buffers that grow as candles arrive, so paper fills, fees,
funding, stops and liquidations are exactly the backtester's. The bot sets the signal of the
latest closed candle with :meth:`SimulatedExchange.set_signal`; it is acted on at the next
candle's open, as in the backtest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from perpbot.sim.config import AccountConfig
from perpbot.sim.engine import BacktestResult, MarketArrays, collect_result, events_frame, funding_frame, trades_frame
from perpbot.data import align_funding, timeframe_to_ms
from perpbot.sim import kernel as K


def bar_funding(events: pd.DataFrame, events_ms: np.ndarray, mark: pd.DataFrame | None, timeframe: str,
                ts: np.ndarray, opens: np.ndarray, i: int, prev_time: pd.Timestamp | None,
                time: pd.Timestamp) -> tuple[float, float]:
    """(funding rate, mark price USDT) charged at the open of candle ``i`` fed one at a time: the events
    (``events_ms``: their times, int64 ms UTC, sorted) in (previous open, this open], aligned as the
    backtest aligns the whole file (:func:`perpbot.data.align_funding`); (0, 0) when none falls there.
    ``ts`` / ``opens``: the candle opens (ms) and open prices (USDT) so far, ``i`` included."""
    hi = np.searchsorted(events_ms, ts[i], side="right")
    lo = np.searchsorted(events_ms, ts[i - 1] if i else ts[i], side="right" if i else "left")
    if hi == lo:  # the fast path: nothing to align
        return 0.0, 0.0
    if i == 0:
        stamps, fallback = pd.Series([time]), np.array([opens[0]])
    else:
        stamps, fallback = pd.Series([prev_time, time]), np.array([opens[i - 1], opens[i]])
    rate, fmark = align_funding(stamps, timeframe, events, mark, fallback)
    return float(rate[-1]), float(fmark[-1])


def merge_funding(known: pd.DataFrame | None, events: pd.DataFrame | None,
                  after_ms: int | None) -> tuple[pd.DataFrame | None, int]:
    """(``known`` funding events with the new ones of ``events`` merged in, time-sorted; how many were added):
    an event is new when its time is not known yet and after ``after_ms`` (ms UTC, the latest processed
    candle's open: its funding is settled; None = any). Frames: ``timestamp`` (UTC), ``funding_rate``."""
    if events is None or not len(events):
        return known, 0
    new = events[["timestamp", "funding_rate"]].copy()
    new["timestamp"] = pd.to_datetime(new["timestamp"], utc=True).astype("datetime64[ms, UTC]")
    stamps = new["timestamp"].astype("int64").to_numpy()
    known_ms = (np.zeros(0, dtype=np.int64) if known is None else
                known["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy())
    keep = ~np.isin(stamps, known_ms)
    if after_ms is not None:
        keep &= stamps > after_ms
    if not keep.any():
        return known, 0
    both = [f for f in (known, new[keep]) if f is not None and len(f)]
    merged = pd.concat(both, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)
    return merged, int(keep.sum())


@dataclass
class BarUpdate:
    """What one candle changed: rows of the trades / risk-events / funding tables it added."""

    bar: int
    trades: pd.DataFrame
    risk_events: pd.DataFrame
    funding: pd.DataFrame
    equity: float
    position: float


class SimulatedExchange:
    """A paper futures account driven candle by candle.

    Args:
        config: account, risk and market-rule settings (same object the backtester takes).
        timeframe: candle timeframe, e.g. "5m".
        funding: funding-rate events (``timestamp``, ``funding_rate``) or None.
        mark: mark-price candles for the funding mark price, or None (candle open is used).
        capacity: initial number of bars the buffers hold (they double when full).
    """

    def __init__(self, config: AccountConfig, timeframe: str, funding: pd.DataFrame | None = None,
                 mark: pd.DataFrame | None = None, capacity: int = 4096) -> None:
        self.config = config
        self.timeframe = timeframe
        self.funding_events = funding
        self._funding_ms = (np.zeros(0, dtype=np.int64) if funding is None else
                            funding["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy())
        self.mark = mark
        self.params = config.params()
        self.tiers = config.tier_arrays()
        self.state = K.new_state(config.capital)
        self.n = 0
        self._alloc(capacity)
        self._times: list[pd.Timestamp] = []
        self._empty = None

    def _alloc(self, cap: int) -> None:
        def grow(old, shape, dtype, fill=0):
            new = np.full(shape, fill, dtype=dtype)
            if old is not None:
                new[: len(old)] = old
            return new
        g = getattr
        self.cap = cap
        for name in ("ts",):
            setattr(self, name, grow(g(self, name, None), cap, np.int64))
        for name in ("o", "h", "lo", "c", "atr", "rate", "fmark", "equity_buf", "position_buf"):
            setattr(self, name, grow(g(self, name, None), cap, np.float64))
        self.signal = grow(g(self, "signal", None), cap, np.int8)
        self.size = grow(g(self, "size", None), cap, np.float64, 1.0)
        self.m1_start = np.full(cap, -1, dtype=np.int64)
        self.m1_end = np.full(cap, -1, dtype=np.int64)
        self._ensure_rows()

    #: rows one bar (or a close) can add to the trades / risk-events / funding tables, at most (the kernel
    #: writes <= 2 trades, <= 3 risk events and <= 1 funding row per bar)
    ROWS_PER_BAR = 8

    def _ensure_rows(self) -> None:
        """Room for one more bar's rows in the trade / risk-event / funding buffers. They grow with
        the rows written, not with the bars (a node that runs for months holds few trades), by
        doubling (amortised O(1))."""
        for name, count, cols in (("trades_buf", K.S_NTRADES, K.N_TRADE_COLS),
                                  ("events_buf", K.S_NEVENTS, K.N_EVENT_COLS),
                                  ("funding_buf", K.S_NFUNDING, K.N_FUNDING_COLS)):
            old = getattr(self, name, None)
            need = int(self.state[count]) + self.ROWS_PER_BAR
            if old is not None and len(old) >= need:
                continue
            new = np.zeros((max(64, need, 2 * (len(old) if old is not None else 0)), cols), dtype=np.float64)
            if old is not None:
                new[: len(old)] = old
            setattr(self, name, new)

    # ------------------------------------------------------------------------------------------
    def on_candle(self, timestamp: pd.Timestamp, o: float, h: float, lo: float, c: float,
                  atr: float = float("nan")) -> BarUpdate:
        """Process one closed candle (UTC open time, USDT prices, ATR in USDT at its close).

        Raises:
            ValueError: the candle is not after the previous one.
        """
        i = self.n
        ts_ms = int(pd.Timestamp(timestamp).value // 1_000_000)
        if i and ts_ms <= self.ts[i - 1]:
            raise ValueError(f"candle {timestamp} is not after the previous candle {self._times[-1]}")
        if i + 1 >= self.cap:
            self._alloc(self.cap * 2)
        self._ensure_rows()
        self.ts[i], self.o[i], self.h[i], self.lo[i], self.c[i], self.atr[i] = ts_ms, o, h, lo, c, atr
        self.rate[i], self.fmark[i] = self._funding_for(i, timestamp)
        counts = (int(self.state[K.S_NTRADES]), int(self.state[K.S_NEVENTS]), int(self.state[K.S_NFUNDING]))
        empty = np.zeros(0)
        K.run_bars(i, i + 1, self.ts, self.o, self.h, self.lo, self.c, self.signal, self.atr, self.rate,
                   self.fmark, self.m1_start, self.m1_end, empty, empty, empty, self.tiers[0], self.tiers[1],
                   self.params, self.state, self.equity_buf, self.position_buf, self.trades_buf,
                   self.events_buf, self.funding_buf, self.size)
        self._times.append(pd.Timestamp(timestamp))
        self.n = i + 1
        return self._update(i, counts)

    def _funding_for(self, i: int, timestamp: pd.Timestamp) -> tuple[float, float]:
        if self.funding_events is None or not self.config.funding:
            return 0.0, 0.0
        return bar_funding(self.funding_events, self._funding_ms, self.mark, self.timeframe, self.ts, self.o, i,
                           self._times[-1] if i else None, pd.Timestamp(timestamp))

    def add_funding(self, events: pd.DataFrame) -> int:
        """Take in funding-rate events published since the account was made (a live feed: the
        venue's settled rates), ``timestamp`` (UTC) and ``funding_rate`` (fraction per interval).
        Events at or before the latest processed candle's open are ignored (that candle's funding
        is settled); the rest join the known events and are charged at the candle opening at
        their time, as in the backtest. Returns the number of events added."""
        merged, added = merge_funding(self.funding_events, events, int(self.ts[self.n - 1]) if self.n else None)
        if added and merged is not None:
            self.funding_events = merged
            self._funding_ms = merged["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        return added

    def set_signal(self, signal: int, size: float = 1.0) -> None:
        """Signal (+1 buy, -1 sell, 0 hold) decided at the close of the latest candle, and the
        scale of an entry's size (1.0 = the configured size; as ``size`` of the backtester)."""
        if self.n == 0:
            raise RuntimeError("set_signal before any candle")
        if signal not in (-1, 0, 1):
            raise ValueError(f"signal must be -1, 0 or +1, got {signal!r}")
        if not (np.isfinite(size) and size >= 0):
            raise ValueError(f"size must be finite and >= 0, got {size!r}")
        self.signal[self.n - 1] = signal
        self.size[self.n - 1] = size

    def close_all(self, manual: bool = False) -> BarUpdate:
        """Close any open position at the latest close: end of the replay, or an operator's
        force-exit (``manual``: exit reason "manual")."""
        counts = (int(self.state[K.S_NTRADES]), int(self.state[K.S_NEVENTS]), int(self.state[K.S_NFUNDING]))
        self._ensure_rows()
        if self.n:
            K.close_position(self.n - 1, self.c[self.n - 1], K.X_MANUAL if manual else K.X_END, self.params,
                             self.state, self.equity_buf, self.position_buf, self.trades_buf)
        return self._update(self.n - 1, counts)

    # ------------------------------------------------------------------------------------------
    def _market(self) -> MarketArrays:
        n = self.n
        return MarketArrays(ts=self.ts[:n], open=self.o[:n], high=self.h[:n], low=self.lo[:n],
                            close=self.c[:n], atr=self.atr[:n], funding_rate=self.rate[:n],
                            funding_mark=self.fmark[:n], m1_start=self.m1_start[:n], m1_end=self.m1_end[:n],
                            m1_open=np.zeros(0), m1_high=np.zeros(0), m1_low=np.zeros(0),
                            timestamps=pd.Series(pd.DatetimeIndex(self._times)),
                            bar_ms=timeframe_to_ms(self.timeframe))

    def _update(self, bar: int, counts: tuple[int, int, int]) -> BarUpdate:
        t0, e0, f0 = counts
        t1, e1, f1 = (int(self.state[K.S_NTRADES]), int(self.state[K.S_NEVENTS]), int(self.state[K.S_NFUNDING]))
        if (t0, e0, f0) == (t1, e1, f1):  # the common case: nothing happened, no frames to build
            if self._empty is None:
                self._empty = self._update_frames(0, 0, 0, 0, 0, 0)
            return BarUpdate(bar, *self._empty, equity=float(self.state[K.S_EQUITY]),
                             position=float(self.state[K.S_SIDE] * self.state[K.S_QTY]))
        trades, events, funding = self._update_frames(t0, t1, e0, e1, f0, f1)
        return BarUpdate(bar=bar, trades=trades, risk_events=events, funding=funding,
                         equity=float(self.state[K.S_EQUITY]),
                         position=float(self.state[K.S_SIDE] * self.state[K.S_QTY]))

    def _update_frames(self, t0, t1, e0, e1, f0, f1):
        times = pd.Series(pd.DatetimeIndex(self._times)) if (t1 > t0 or e1 > e0 or f1 > f0) else pd.Series(
            [], dtype="datetime64[ms, UTC]")
        trades = trades_frame(self.trades_buf[t0:t1], times, self.config.leverage)
        trades["trade_id"] += t0
        return trades, events_frame(self.events_buf[e0:e1], times), funding_frame(self.funding_buf[f0:f1], times)

    def result(self) -> BacktestResult:
        """Everything so far, in the backtester's result format."""
        outs = (self.equity_buf, self.position_buf, self.trades_buf, self.events_buf, self.funding_buf)
        return collect_result(self._market(), self.state, outs, self.config, self.n)

    def restore(self, state: np.ndarray, candles: pd.DataFrame, atr: float, signal: int) -> None:
        """Continue a saved account: ``state`` (the kernel's state vector, length
        ``kernel.N_STATE``) after the last of ``candles`` (timestamp, open, high, low, close:
        every candle processed so far, in order), the ATR (USDT) at that candle's close and
        the signal (-1/0/+1) decided there, which acts at the next candle's open.

        Only a fresh exchange can be restored. :meth:`result` then covers the bars after the
        restore only (the trades, events and funding rows before it are in the ledger).
        Raises ValueError for a state of another length, no candles, or a used exchange.
        """
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (K.N_STATE,):
            raise ValueError(f"account state has {state.size} values, this version needs {K.N_STATE}")
        if self.n:
            raise ValueError("restore needs a fresh simulated exchange")
        if signal not in (-1, 0, 1):
            raise ValueError(f"signal must be -1, 0 or +1, got {signal!r}")
        n = len(candles)
        if n == 0:
            raise ValueError("restore needs the candles processed so far")
        cap = self.cap
        while cap <= n + 1:
            cap *= 2
        if cap != self.cap:
            self._alloc(cap)
        stamps = pd.DatetimeIndex(candles["timestamp"])
        self.ts[:n] = stamps.as_unit("ms").asi8
        for name, col in (("o", "open"), ("h", "high"), ("lo", "low"), ("c", "close")):
            getattr(self, name)[:n] = candles[col].to_numpy(np.float64)
        self.atr[n - 1] = atr
        self.signal[n - 1] = signal
        self.state[:] = state
        self._times = list(candles["timestamp"])
        self.n = n

    @property
    def equity(self) -> float:
        """Equity in USDT marked at the latest close."""
        return float(self.state[K.S_EQUITY])

    @property
    def position(self) -> dict:
        """Open position: side (+1/-1/0), qty, entry_price, stop_loss, take_profit, liquidation_price
        (USDT), margin (USDT), entry_bar (index of the candle it was opened in; None when flat)."""
        return K.position_of(self.state)
