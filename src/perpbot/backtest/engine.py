"""Backtest engine: prepares arrays, runs the compiled account loop over all bars, returns frames.

The loop itself is :func:`perpbot.exchange.kernel.run_bars` (shared with the paper exchange).
This module turns settings into the loop's parameter array (:class:`SimConfig`), candles and
funding into aligned arrays (:class:`MarketArrays`), and the loop's row buffers into the
trades / risk-events / funding tables of :class:`BacktestResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import talib

from perpbot.exchange import kernel as K
from perpbot.risk.sizing import SIZING_ATR, SIZING_EQUITY, SIZING_FIXED_FRACTION, STOP_ATR, STOP_PERCENT
from perpbot.types import TRADE_COLUMNS, ExitReason, RiskEvent

# Bitget SOLUSDT USDT-M position tiers (upper notional bound in USDT, maintenance margin rate),
# announcement Sep 2025 (shared/reference/bitget.md). Read from the exchange when online.
SOLUSDT_TIERS = ((50_000.0, 0.005), (100_000.0, 0.008), (1_000_000.0, 0.01), (5_000_000.0, 0.02),
                 (10_000_000.0, 0.03), (30_000_000.0, 0.05), (60_000_000.0, 0.12))

_SIZING = {"fixed_fraction": SIZING_FIXED_FRACTION, "atr": SIZING_ATR, "equity": SIZING_EQUITY}
_STOP = {"percent": STOP_PERCENT, "atr": STOP_ATR}


@dataclass(frozen=True)
class SimConfig:
    """Account, risk and market-rule settings of one simulation (fractions, not percents).

    ``stop_loss`` / ``take_profit``: fractions of the entry price (stop_mode "percent") or ATR
    multiples (stop_mode "atr"); 0 disables the level (buy-and-hold baseline only).
    """

    capital: float = 1000.0
    leverage: float = 3.0
    taker_fee: float = 0.0006
    slippage: float = 0.0002
    sizing: str = "fixed_fraction"
    risk: float = 0.01
    equity_fraction: float = 1.0
    sizing_atr_mult: float = 2.0
    stop_mode: str = "percent"
    stop_loss: float = 0.01
    take_profit: float = 0.02
    trailing_stop: float = 0.0
    max_daily_loss: float = 0.05
    max_drawdown: float = 0.20
    cooldown_bars: int = 6
    lot_size: float = 0.1
    tick_size: float = 0.001
    min_qty: float = 0.1
    min_notional: float = 5.0
    funding: bool = True
    warmup_bars: int = 0
    atr_period: int = 14
    tiers: tuple = field(default=SOLUSDT_TIERS)

    @classmethod
    def from_settings(cls, s, **overrides) -> "SimConfig":
        """Build from :class:`perpbot.config.Settings` (percent fields converted to fractions)."""
        atr_mode = s.stop_mode == "atr"
        values = dict(
            capital=s.starting_capital, leverage=s.leverage, taker_fee=s.taker_fee / 100,
            slippage=s.slippage / 100, sizing=s.sizing, risk=s.risk_per_trade / 100,
            equity_fraction=s.equity_fraction, sizing_atr_mult=s.sizing_atr_mult, stop_mode=s.stop_mode,
            stop_loss=s.stop_loss_atr if atr_mode else s.stop_loss / 100,
            take_profit=s.take_profit_atr if atr_mode else s.take_profit / 100,
            trailing_stop=(s.trailing_stop or 0.0) / 100, max_daily_loss=s.max_daily_loss / 100,
            max_drawdown=s.max_drawdown / 100, cooldown_bars=s.cooldown_bars, lot_size=s.lot_size,
            tick_size=s.tick_size, min_qty=s.min_qty, min_notional=s.min_notional, funding=s.funding,
            warmup_bars=s.warmup_bars, atr_period=s.atr_period,
        )
        values.update(overrides)
        return cls(**values)

    def params(self) -> np.ndarray:
        """The float64 parameter array of :func:`perpbot.exchange.kernel.run_bars`."""
        if self.sizing not in _SIZING:
            raise ValueError(f"sizing {self.sizing!r} is not one of {sorted(_SIZING)}")
        if self.stop_mode not in _STOP:
            raise ValueError(f"stop_mode {self.stop_mode!r} is not one of {sorted(_STOP)}")
        p = np.zeros(K.N_PARAMS, dtype=np.float64)
        p[K.P_LEVERAGE] = self.leverage
        p[K.P_TAKER_FEE] = self.taker_fee
        p[K.P_SLIPPAGE] = self.slippage
        p[K.P_SIZING] = _SIZING[self.sizing]
        p[K.P_RISK] = self.risk
        p[K.P_EQUITY_FRAC] = self.equity_fraction
        p[K.P_SIZING_ATR_MULT] = self.sizing_atr_mult
        p[K.P_STOP_MODE] = _STOP[self.stop_mode]
        p[K.P_SL] = self.stop_loss
        p[K.P_TP] = self.take_profit
        p[K.P_TRAIL] = self.trailing_stop
        p[K.P_MAX_DAILY_LOSS] = self.max_daily_loss
        p[K.P_MAX_DD] = self.max_drawdown
        p[K.P_COOLDOWN] = self.cooldown_bars
        p[K.P_LOT] = self.lot_size
        p[K.P_TICK] = self.tick_size
        p[K.P_MIN_QTY] = self.min_qty
        p[K.P_MIN_NOTIONAL] = self.min_notional
        p[K.P_FUNDING_ON] = 1.0 if self.funding else 0.0
        p[K.P_WARMUP] = self.warmup_bars
        return p

    def tier_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        upper = np.array([t[0] for t in self.tiers], dtype=np.float64)
        mmr = np.array([t[1] for t in self.tiers], dtype=np.float64)
        return upper, mmr


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
    config: SimConfig


def allocate_outputs(n: int):
    """Row buffers big enough for ``n`` bars (each bar adds at most 2 trades / 2 events / 1 funding)."""
    return (np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.float64),
            np.zeros((2 * n + 2, K.N_TRADE_COLS)), np.zeros((2 * n + 2, K.N_EVENT_COLS)),
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


def run_backtest(market: MarketArrays, signal: np.ndarray, config: SimConfig,
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


def collect_result(market: MarketArrays, state: np.ndarray, outs, config: SimConfig, n: int) -> BacktestResult:
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
        "leverage": np.full(len(rows), leverage),
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
