"""Simulation engine: prepares arrays, runs the compiled account loop over all bars, returns frames.

The loop itself is :func:`perpbot.sim.kernel.run_bars` (shared with the paper exchange).
This module turns candles and funding into aligned arrays (:class:`MarketArrays`), runs the loop
with the parameter array of an :class:`~perpbot.sim.config.AccountConfig`, and turns the loop's
row buffers into the trades / risk-events / funding tables of :class:`BacktestResult`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import talib

from perpbot.sim import kernel as K
from perpbot.sim.config import AccountConfig
from perpbot.types import TRADE_COLUMNS, ExitReason, RiskEvent

@dataclass
class MarketArrays:
    """Candles and per-bar funding as contiguous arrays for the compiled loop (length n).

    ``ts`` int64 ms UTC candle opens; prices float64 USDT; ``atr`` float64 USDT (TA-Lib ATR);
    ``funding_rate`` / ``funding_mark`` float64 per bar (0 where no funding event falls in the bar);
    ``m1_start`` / ``m1_end`` int64 index ranges into the 1m arrays (-1 = no finer candles).
    """

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    atr: np.ndarray
    funding_rate: np.ndarray
    funding_mark: np.ndarray
    m1_start: np.ndarray
    m1_end: np.ndarray
    m1_open: np.ndarray
    m1_high: np.ndarray
    m1_low: np.ndarray
    timestamps: pd.Series
    bar_ms: int = 0

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def build(cls, candles: pd.DataFrame, timeframe: str, *, funding: pd.DataFrame | None = None,
              mark: pd.DataFrame | None = None, intrabar: pd.DataFrame | None = None,
              atr_period: int = 14) -> "MarketArrays":
        """Align candles (validated frame), funding, mark candles and optional 1m candles."""
        from perpbot.data import align_funding, timeframe_to_ms

        ts = candles["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        o = np.ascontiguousarray(candles["open"].to_numpy(np.float64))
        h = np.ascontiguousarray(candles["high"].to_numpy(np.float64))
        lo = np.ascontiguousarray(candles["low"].to_numpy(np.float64))
        c = np.ascontiguousarray(candles["close"].to_numpy(np.float64))
        atr = talib.ATR(h, lo, c, timeperiod=atr_period)
        if funding is not None:
            rate, fmark = align_funding(candles["timestamp"], timeframe, funding, mark, o)
        else:
            rate, fmark = np.zeros(len(ts)), np.zeros(len(ts))
        n = len(ts)
        m1_start = np.full(n, -1, dtype=np.int64)
        m1_end = np.full(n, -1, dtype=np.int64)
        empty = np.zeros(0, dtype=np.float64)
        m1o = m1h = m1l = empty
        if intrabar is not None and len(intrabar):
            m1_ts = intrabar["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
            tf_ms = timeframe_to_ms(timeframe)
            per_bar = tf_ms // 60_000
            start = np.searchsorted(m1_ts, ts, side="left")
            end = np.searchsorted(m1_ts, ts + tf_ms, side="left")
            full = (end - start) == per_bar
            m1_start = np.where(full, start, -1).astype(np.int64)
            m1_end = np.where(full, end, -1).astype(np.int64)
            m1o = intrabar["open"].to_numpy(np.float64)
            m1h = intrabar["high"].to_numpy(np.float64)
            m1l = intrabar["low"].to_numpy(np.float64)
        return cls(ts=np.ascontiguousarray(ts), open=o, high=h, low=lo, close=c, atr=atr,
                   funding_rate=np.ascontiguousarray(rate, dtype=np.float64),
                   funding_mark=np.ascontiguousarray(fmark, dtype=np.float64),
                   m1_start=m1_start, m1_end=m1_end, m1_open=m1o, m1_high=m1h, m1_low=m1l,
                   timestamps=candles["timestamp"].reset_index(drop=True), bar_ms=timeframe_to_ms(timeframe))


@dataclass
class BacktestResult:
    """Outputs of one simulation.

    ``equity``: USDT marked at each bar's close, indexed by that close time (candle open +
    timeframe, UTC);
    ``position``: signed qty (base asset) held at each close; ``trades``: :data:`TRADE_COLUMNS`;
    ``risk_events``: time, bar, event, value; ``funding``: time, bar, rate, mark_price, qty, amount
    (USDT, > 0 paid); ``state``: the final account state array.
    """

    equity: pd.Series
    position: np.ndarray
    trades: pd.DataFrame
    risk_events: pd.DataFrame
    funding: pd.DataFrame
    state: np.ndarray
    config: AccountConfig


def allocate_outputs(n: int):
    """Row buffers big enough for ``n`` bars (each bar adds at most 2 trades / 2 events / 1 funding)."""
    return (np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.float64),
            np.zeros((2 * n + 2, K.N_TRADE_COLS)), np.zeros((4 * n + 4, K.N_EVENT_COLS)),
            np.zeros((n + 1, K.N_FUNDING_COLS)))


def run_kernel(m: MarketArrays, signal: np.ndarray, params: np.ndarray, tiers, state, outs, i0: int, i1: int,
               size: np.ndarray | None = None):
    """Call the compiled loop for bars [i0, i1) on prepared arrays (``size``: optional per-bar entry scale)."""
    equity, position, trades, events, fundings = outs
    args = (i0, i1, m.ts, m.open, m.high, m.low, m.close, signal, m.atr, m.funding_rate, m.funding_mark,
            m.m1_start, m.m1_end, m.m1_open, m.m1_high, m.m1_low, tiers[0], tiers[1],
            params, state, equity, position, trades, events, fundings)
    if size is None:
        K.run_bars(*args)
    else:
        K.run_bars(*args, size)


def run_backtest(market: MarketArrays, signal: np.ndarray, config: AccountConfig,
                 close_at_end: bool = True, size: np.ndarray | None = None) -> BacktestResult:
    """Simulate ``signal`` (int8 per bar, acted on at the next open) over ``market``.

    ``size``: optional float64 (n,) scale of the entry size decided with each bar's signal
    (1.0 = the configured size: ``risk`` of equity at the stop, or ``equity_fraction``; e.g. a
    fractional-Kelly size from :mod:`perpbot.ml.decision`). None = 1.0 everywhere.

    Raises:
        ValueError: when ``signal`` (or ``size``) does not have one value per bar, or ``size``
            holds a negative or non-finite value.
    """
    n = len(market)
    signal = np.ascontiguousarray(signal, dtype=np.int8)
    if signal.shape != (n,):
        raise ValueError(f"signal has shape {signal.shape}, expected ({n},) — one value per candle")
    if size is not None:
        size = np.ascontiguousarray(size, dtype=np.float64)
        if size.shape != (n,):
            raise ValueError(f"size has shape {size.shape}, expected ({n},) — one value per candle")
        if not (np.isfinite(size).all() and (size >= 0).all()):
            raise ValueError("size must be finite and >= 0 (1.0 = the configured size)")
    params = config.params()
    tiers = config.tier_arrays()
    state = K.new_state(config.capital)
    outs = allocate_outputs(n)
    if n:
        run_kernel(market, signal, params, tiers, state, outs, 0, n, size)
        if close_at_end:
            K.close_at_end(n - 1, market.close, params, state, outs[0], outs[1], outs[2])
    return collect_result(market, state, outs, config, n)


def collect_result(market: MarketArrays, state: np.ndarray, outs, config: AccountConfig, n: int) -> BacktestResult:
    """Turn the loop's buffers (first ``n`` bars) into frames."""
    equity, position, trades, events, fundings = outs
    times = market.timestamps.iloc[:n]
    close_times = pd.DatetimeIndex(times) + pd.Timedelta(milliseconds=market.bar_ms)
    eq = pd.Series(equity[:n].copy(), index=close_times, name="equity")
    return BacktestResult(
        equity=eq, position=position[:n].copy(),
        trades=trades_frame(trades[: int(state[K.S_NTRADES])], market.timestamps, config.leverage),
        risk_events=events_frame(events[: int(state[K.S_NEVENTS])], market.timestamps),
        funding=funding_frame(fundings[: int(state[K.S_NFUNDING])], market.timestamps),
        state=state.copy(), config=config)


def trades_frame(rows: np.ndarray, timestamps: pd.Series, leverage: float) -> pd.DataFrame:
    """Trade rows of the loop as a :data:`TRADE_COLUMNS` frame (+ entry_fee, exit_fee)."""
    entry_bar = rows[:, K.T_ENTRY_BAR].astype(np.int64)
    exit_bar = rows[:, K.T_EXIT_BAR].astype(np.int64)
    ts = timestamps.reset_index(drop=True)
    df = pd.DataFrame({
        "trade_id": np.arange(1, len(rows) + 1),
        "side": rows[:, K.T_SIDE].astype(np.int64),
        "qty": rows[:, K.T_QTY],
        "entry_time": ts.iloc[entry_bar].to_numpy() if len(rows) else pd.Series([], dtype=ts.dtype),
        "entry_price": rows[:, K.T_ENTRY_PRICE],
        "exit_time": ts.iloc[exit_bar].to_numpy() if len(rows) else pd.Series([], dtype=ts.dtype),
        "exit_price": rows[:, K.T_EXIT_PRICE],
        "exit_reason": [ExitReason(int(r)).label for r in rows[:, K.T_REASON]],
        "gross_pnl": rows[:, K.T_GROSS],
        "fees": rows[:, K.T_FEES],
        "funding": rows[:, K.T_FUNDING],
        "pnl": rows[:, K.T_PNL],
        "entry_bar": entry_bar,
        "exit_bar": exit_bar,
        "leverage": rows[:, K.T_LEV] if len(rows) else np.full(0, leverage),
        "margin": rows[:, K.T_MARGIN],
        "stop_loss": rows[:, K.T_SL],
        "take_profit": rows[:, K.T_TP],
        "liquidation_price": rows[:, K.T_LIQ],
        "entry_fee": rows[:, K.T_ENTRY_FEE],
        "exit_fee": rows[:, K.T_EXIT_FEE],
    })
    return df[list(TRADE_COLUMNS) + ["entry_fee", "exit_fee"]]


def events_frame(rows: np.ndarray, timestamps: pd.Series) -> pd.DataFrame:
    bars = rows[:, K.E_BAR].astype(np.int64)
    ts = timestamps.reset_index(drop=True)
    return pd.DataFrame({
        "time": ts.iloc[bars].to_numpy() if len(rows) else pd.Series([], dtype=ts.dtype),
        "bar": bars,
        "event": [RiskEvent(int(c)).label for c in rows[:, K.E_CODE]],
        "value": rows[:, K.E_VALUE],
    })


def funding_frame(rows: np.ndarray, timestamps: pd.Series) -> pd.DataFrame:
    bars = rows[:, K.F_BAR].astype(np.int64)
    ts = timestamps.reset_index(drop=True)
    return pd.DataFrame({
        "time": ts.iloc[bars].to_numpy() if len(rows) else pd.Series([], dtype=ts.dtype),
        "bar": bars, "rate": rows[:, K.F_RATE], "mark_price": rows[:, K.F_MARK],
        "qty": rows[:, K.F_QTY], "amount": rows[:, K.F_AMOUNT],
    })
