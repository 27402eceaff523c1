"""Several symbols traded from one account: the risk budget, the account's buffers, the backtest.

:class:`PortfolioBook` holds the arrays of the compiled portfolio loop
(:func:`perpbot.sim.portfolio_kernel.run_portfolio_bars`) for S symbols on one timeline and runs it
over stored bars; the backtest (:func:`run_portfolio_backtest`, all bars in one call) and the
portfolio paper exchange (:class:`perpbot.exchange.simulated_portfolio.PortfolioExchange`, one call
per candle) both run through it, so a portfolio replay fills as the portfolio backtest does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from perpbot.sim import kernel as K
from perpbot.sim import portfolio_kernel as PK
from perpbot.sim.config import AccountConfig
from perpbot.sim.engine import BacktestResult, MarketArrays, collect_result, events_frame


@dataclass(frozen=True)
class PortfolioBudget:
    """The account-wide risk budget of a portfolio (fractions of the balance, not percents).

    ``max_positions``: open positions at once (0 = any); ``max_total_margin``: initial margin of all
    positions as a fraction of the balance (0 = up to the available balance); ``max_symbol_margin``:
    one position's initial margin as a fraction of the balance (0 = no cap); ``corr_threshold``:
    refuse an entry when an open same-direction position's returns correlate at r >= this over the
    last ``corr_window`` closed bars (0 = no guard). See :mod:`perpbot.sim.portfolio_kernel`.
    """

    max_positions: int = 3
    max_total_margin: float = 0.0
    max_symbol_margin: float = 0.0
    corr_threshold: float = 0.0
    corr_window: int = 288

    @classmethod
    def from_settings(cls, s) -> "PortfolioBudget":
        """From :class:`perpbot.config.Settings` (``portfolio_*`` fields, percents -> fractions)."""
        return cls(max_positions=s.portfolio_max_positions, max_total_margin=s.portfolio_max_total_margin / 100.0,
                   max_symbol_margin=s.portfolio_max_symbol_margin / 100.0,
                   corr_threshold=s.portfolio_corr_threshold, corr_window=s.portfolio_corr_window)

    def params(self, account: AccountConfig) -> np.ndarray:
        """The portfolio parameter array; the account's drawdown and daily-loss limits from ``account``."""
        p = np.zeros(PK.N_PPARAMS, dtype=np.float64)
        p[PK.PP_MAX_POSITIONS] = self.max_positions
        p[PK.PP_MAX_TOTAL_MARGIN] = self.max_total_margin
        p[PK.PP_MAX_SYMBOL_MARGIN] = self.max_symbol_margin
        p[PK.PP_CORR_THRESHOLD] = self.corr_threshold
        p[PK.PP_CORR_WINDOW] = self.corr_window
        p[PK.PP_MAX_DD] = account.max_drawdown
        p[PK.PP_MAX_DAILY_LOSS] = account.max_daily_loss
        return p


@dataclass
class PortfolioResult:
    """One portfolio simulation.

    ``equity``: the account's equity (USDT) at each bar's close, indexed by close time (UTC);
    ``per_symbol``: each symbol's :class:`BacktestResult` (its trades, risk events, funding; its
    ``equity`` counts the whole balance, so read the account's here); ``trades``: every trade with
    a ``symbol`` column, in exit order; ``risk_events``: the account's halts plus every symbol's
    events (``symbol`` "*" for the account); ``breakdown``: per symbol trades, wins, pnl, fees,
    funding (USDT).
    """

    equity: pd.Series
    per_symbol: dict[str, BacktestResult]
    trades: pd.DataFrame
    risk_events: pd.DataFrame
    breakdown: pd.DataFrame
    capital: float


def _pad_tiers(configs: list[AccountConfig]) -> tuple[np.ndarray, np.ndarray]:
    tiers = [c.tier_arrays() for c in configs]
    width = max(len(u) for u, _ in tiers)
    upper = np.full((len(tiers), width), np.inf)
    mmr = np.zeros((len(tiers), width))
    for k, (u, m) in enumerate(tiers):
        upper[k, : len(u)], mmr[k, : len(m)], mmr[k, len(m):] = u, m, m[-1]
    return upper, mmr


class PortfolioBook:
    """The buffers of S symbols on one account and the compiled loop over them.

    Args:
        symbols: ccxt symbols, in the order the loop visits them within a bar.
        configs: each symbol's :class:`AccountConfig` (its market rules, fees); the first one's
            ``capital``, drawdown and daily-loss limits are the account's.
        budget: the :class:`PortfolioBudget`.
        capacity: bars the per-bar buffers hold at first (they double when full; the row buffers
            grow with the rows written).
    """

    ROWS_PER_BAR = 8
    # per-bar buffers: (cap,) or (S, cap); row buffers (S, rows, cols) / (rows, 3); set by _grow / _ensure_rows
    ts: np.ndarray
    o: np.ndarray
    h: np.ndarray
    lo: np.ndarray
    c: np.ndarray
    atr: np.ndarray
    rate: np.ndarray
    fmark: np.ndarray
    signal: np.ndarray
    size: np.ndarray
    equity_buf: np.ndarray
    position_buf: np.ndarray
    pequity: np.ndarray
    trades_buf: np.ndarray
    events_buf: np.ndarray
    funding_buf: np.ndarray
    pevents: np.ndarray

    def __init__(self, symbols: list[str], configs: dict[str, AccountConfig], budget: PortfolioBudget,
                 capacity: int = 4096) -> None:
        if not symbols or len(set(symbols)) != len(symbols):
            raise ValueError(f"a portfolio needs distinct symbols, got {symbols!r}")
        missing = [s for s in symbols if s not in configs]
        if missing:
            raise ValueError(f"no account settings for {', '.join(missing)}")
        self.symbols = list(symbols)
        self.configs = [configs[s] for s in symbols]
        first = self.configs[0]
        self.capital = first.capital
        self.budget = budget
        self.params = np.stack([c.params() for c in self.configs])
        self.params[:, K.P_MAX_DD] = np.inf  # the account's limits apply (portfolio_kernel), not each symbol's
        self.params[:, K.P_MAX_DAILY_LOSS] = np.inf
        self.params[:, K.P_BUDGET_TOTAL] = budget.max_total_margin  # the margin budget, at each entry (kernel)
        self.params[:, K.P_BUDGET_SYMBOL] = budget.max_symbol_margin
        self.tier_upper, self.tier_mmr = _pad_tiers(self.configs)
        self.pparams = budget.params(first)
        self.state = np.stack([K.new_state(first.capital) for _ in symbols])
        self.pstate = PK.new_portfolio_state(first.capital)
        self.n = 0
        self.cap = 0
        self._grow(capacity)
        self._ensure_rows()

    def _grow(self, cap: int) -> None:
        s = len(self.symbols)

        def grow(name, shape, dtype, fill=0.0):
            new = np.full(shape, fill, dtype=dtype)
            old = getattr(self, name, None)
            if old is not None:
                new[..., : old.shape[-1]] = old
            setattr(self, name, new)
        grow("ts", cap, np.int64)
        for name in ("o", "h", "lo", "c", "atr", "rate", "fmark", "equity_buf", "position_buf"):
            grow(name, (s, cap), np.float64)
        grow("signal", (s, cap), np.int8, 0)
        grow("size", (s, cap), np.float64, 1.0)
        grow("pequity", cap, np.float64)
        self.no_m1 = np.full(cap, -1, dtype=np.int64)
        self.cap = cap

    def _ensure_rows(self, bars: int = 1) -> None:
        """Room for ``bars`` more bars' rows (grown by doubling with the rows written, not the bars)."""
        need_of = {"trades_buf": (K.S_NTRADES, K.N_TRADE_COLS), "events_buf": (K.S_NEVENTS, K.N_EVENT_COLS),
                   "funding_buf": (K.S_NFUNDING, K.N_FUNDING_COLS)}
        for name, (count, cols) in need_of.items():
            old = getattr(self, name, None)
            need = int(self.state[:, count].max()) + self.ROWS_PER_BAR * bars
            if old is None or old.shape[1] < need:
                new = np.zeros((len(self.symbols), max(64, need, 2 * (0 if old is None else old.shape[1])), cols))
                if old is not None:
                    new[:, : old.shape[1]] = old
                setattr(self, name, new)
        old = getattr(self, "pevents", None)
        need = int(self.pstate[PK.PS_NEVENTS]) + 2 * bars + 2
        if old is None or len(old) < need:
            new = np.zeros((max(64, need, 2 * (0 if old is None else len(old))), K.N_EVENT_COLS))
            if old is not None:
                new[: len(old)] = old
            self.pevents = new

    def reserve(self, n: int) -> None:
        """Make room for ``n`` bars in all."""
        if n > self.cap:
            cap = max(self.cap, 1)
            while cap < n:
                cap *= 2
            self._grow(cap)

    def run(self, i0: int, i1: int) -> None:
        """Run the compiled loop over stored bars ``i0 .. i1-1`` (``self.n`` becomes ``i1``)."""
        self._ensure_rows(i1 - i0)
        PK.run_portfolio_bars(i0, i1, self.ts, self.o, self.h, self.lo, self.c, self.signal, self.size, self.atr,
                              self.rate, self.fmark, self.tier_upper, self.tier_mmr, self.params, self.state,
                              self.pparams, self.pstate, self.equity_buf, self.position_buf, self.trades_buf,
                              self.events_buf, self.funding_buf, self.pequity, self.pevents, self.no_m1)
        self.n = i1

    def close_all(self, manual: bool = False) -> float:
        """Close every open position at the last close (end of data, or ``manual``: an operator's
        force-exit); returns the account's equity (USDT)."""
        self._ensure_rows()
        if not self.n:
            return float(self.pstate[PK.PS_EQUITY])
        i = self.n - 1
        equity = PK.close_all_positions(i, np.ascontiguousarray(self.c[:, i]), K.X_MANUAL if manual else K.X_END,
                                        self.params, self.state, self.pstate, self.equity_buf, self.position_buf,
                                        self.trades_buf)
        self.pequity[i] = equity
        return float(equity)

    def counts(self) -> np.ndarray:
        """Rows written so far: (S, 3) trades / risk events / funding per symbol."""
        return self.state[:, [K.S_NTRADES, K.S_NEVENTS, K.S_NFUNDING]].astype(np.int64)

    def position(self, k: int) -> dict:
        """Symbol ``k``'s open position (as :attr:`SimulatedExchange.position`)."""
        return K.position_of(self.state[k])

    def market(self, k: int, timestamps: pd.Series, bar_ms: int) -> MarketArrays:
        """Symbol ``k``'s stored bars as :class:`MarketArrays` (first ``n``)."""
        n, z = self.n, np.zeros(0)
        return MarketArrays(ts=self.ts[:n], open=self.o[k, :n], high=self.h[k, :n], low=self.lo[k, :n],
                            close=self.c[k, :n], atr=self.atr[k, :n], funding_rate=self.rate[k, :n],
                            funding_mark=self.fmark[k, :n], m1_start=self.no_m1[:n], m1_end=self.no_m1[:n],
                            m1_open=z, m1_high=z, m1_low=z, timestamps=timestamps.iloc[:n].reset_index(drop=True),
                            bar_ms=bar_ms)

    def result(self, timestamps: pd.Series, bar_ms: int) -> PortfolioResult:
        """Everything so far in frames (``timestamps``: the candle opens of the stored bars, UTC)."""
        n = self.n
        per = {}
        for k, sym in enumerate(self.symbols):
            outs = (self.equity_buf[k], self.position_buf[k], self.trades_buf[k], self.events_buf[k],
                    self.funding_buf[k])
            per[sym] = collect_result(self.market(k, timestamps, bar_ms), self.state[k], outs, self.configs[k], n)
        close_times = pd.DatetimeIndex(timestamps.iloc[:n]) + pd.Timedelta(milliseconds=bar_ms)
        equity = pd.Series(self.pequity[:n].copy(), index=close_times, name="equity")
        trades = pd.concat([r.trades.assign(symbol=s) for s, r in per.items()], ignore_index=True)
        trades = trades.sort_values(["exit_bar", "entry_bar"], kind="stable").reset_index(drop=True)
        account = events_frame(self.pevents[: int(self.pstate[PK.PS_NEVENTS])], timestamps.reset_index(drop=True))
        events = pd.concat([account.assign(symbol="*")] + [r.risk_events.assign(symbol=s) for s, r in per.items()],
                           ignore_index=True).sort_values("bar", kind="stable").reset_index(drop=True)
        return PortfolioResult(equity=equity, per_symbol=per, trades=trades, risk_events=events,
                               breakdown=breakdown(per), capital=self.capital)


def breakdown(per_symbol: dict[str, BacktestResult]) -> pd.DataFrame:
    """Per-symbol table: trades, wins, win rate (fraction), net pnl, fees, funding (USDT)."""
    rows = []
    for sym, r in per_symbol.items():
        t = r.trades
        wins = int((t["pnl"] > 0).sum())
        rows.append({"symbol": sym, "trades": len(t), "wins": wins, "win_rate": wins / len(t) if len(t) else 0.0,
                     "pnl": float(t["pnl"].sum()), "fees": float(t["fees"].sum()),
                     "funding": float(t["funding"].sum())})
    return pd.DataFrame(rows).set_index("symbol")


def run_portfolio_backtest(markets: dict[str, MarketArrays], signals: dict[str, np.ndarray],
                           configs: dict[str, AccountConfig], budget: PortfolioBudget,
                           sizes: dict[str, np.ndarray | None] | None = None, close_at_end: bool = True) -> PortfolioResult:
    """Simulate each symbol's ``signals`` (int8 (n,), acted on at the next open) on one account.

    ``markets``: the symbols' :class:`MarketArrays` on one timeline (same candle opens), in the
    order the loop visits them; ``sizes``: optional per-symbol entry-size scales (as
    :func:`perpbot.sim.engine.run_backtest`). 1m candles are not used (the conservative intrabar rule).

    Raises:
        ValueError: the symbols' candles are not on one timeline, or a signal / size has not one
            value per candle.
    """
    symbols = list(markets)
    first = markets[symbols[0]]
    n = len(first)
    for s in symbols:
        if not np.array_equal(markets[s].ts, first.ts):
            raise ValueError(f"{s}'s candles are not on {symbols[0]}'s timeline (align them first: "
                             "perpbot.data.market.align_markets)")
    book = PortfolioBook(symbols, configs, budget, capacity=max(n, 1))
    book.ts[:n] = first.ts
    for k, s in enumerate(symbols):
        m = markets[s]
        sig = np.asarray(signals[s], dtype=np.int8)
        if sig.shape != (n,):
            raise ValueError(f"{s}: signal has shape {sig.shape}, expected ({n},) — one value per candle")
        book.signal[k, :n] = sig
        if sizes is not None and sizes.get(s) is not None:
            size = np.asarray(sizes[s], dtype=np.float64)
            if size.shape != (n,) or not (np.isfinite(size).all() and (size >= 0).all()):
                raise ValueError(f"{s}: size must be finite, >= 0 and one value per candle")
            book.size[k, :n] = size
        for name, arr in (("o", m.open), ("h", m.high), ("lo", m.low), ("c", m.close), ("atr", m.atr),
                          ("rate", m.funding_rate), ("fmark", m.funding_mark)):
            getattr(book, name)[k, :n] = arr
    if n:
        book.run(0, n)
        if close_at_end:
            book.close_all()
    return book.result(first.timestamps, first.bar_ms)
