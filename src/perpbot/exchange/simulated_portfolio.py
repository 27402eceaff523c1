"""Simulated exchange for a portfolio: one paper account trading several symbols, fed one candle of
every symbol at a time.

It runs the portfolio backtest's compiled loop (:class:`perpbot.sim.portfolio.PortfolioBook`) on one
bar per call, so the fills, fees, funding, stops, liquidations and risk-budget vetoes of a portfolio
paper run are exactly those of :func:`perpbot.sim.portfolio.run_portfolio_backtest` on the same
candles and signals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.data import timeframe_to_ms
from perpbot.exchange.simulated import BarUpdate, bar_funding, merge_funding
from perpbot.sim import kernel as K
from perpbot.sim import portfolio_kernel as PK
from perpbot.sim.config import AccountConfig
from perpbot.sim.engine import events_frame, funding_frame, trades_frame
from perpbot.sim.portfolio import PortfolioBook, PortfolioBudget, PortfolioResult


class PortfolioExchange:
    """A paper account over ``symbols`` driven candle by candle.

    Args:
        symbols: ccxt symbols, in the loop's order.
        configs: each symbol's :class:`AccountConfig` (the first one's capital and limits are the account's).
        budget: the :class:`PortfolioBudget`.
        timeframe: candle timeframe, e.g. "1h".
        funding / mark: per symbol, funding-rate events and mark candles (or None).
    """

    def __init__(self, symbols: list[str], configs: dict[str, AccountConfig], budget: PortfolioBudget,
                 timeframe: str, funding: dict[str, pd.DataFrame | None] | None = None,
                 mark: dict[str, pd.DataFrame | None] | None = None, capacity: int = 4096) -> None:
        self.book = PortfolioBook(symbols, configs, budget, capacity)
        self.symbols = list(symbols)
        self.timeframe = timeframe
        self.bar_ms = timeframe_to_ms(timeframe)
        funding, mark = funding or {}, mark or {}
        self._funding = {s: funding.get(s) if configs[s].funding else None for s in symbols}
        self._funding_ms = {s: (np.zeros(0, dtype=np.int64) if f is None else f["timestamp"].astype(
            "datetime64[ms, UTC]").astype("int64").to_numpy()) for s, f in self._funding.items()}
        self._mark = {s: mark.get(s) for s in symbols}
        self._times: list[pd.Timestamp] = []
        self._empty: tuple | None = None
        #: the account's halts (drawdown, daily loss) of the latest candle: risk-events frame, or None
        self.account_events: pd.DataFrame | None = None

    @property
    def n(self) -> int:
        """Candles processed."""
        return self.book.n

    @property
    def last_ts_ms(self) -> int | None:
        """Open time (ms UTC) of the latest candle processed; None before the first."""
        return int(self.book.ts[self.book.n - 1]) if self.book.n else None

    @property
    def last_time(self) -> pd.Timestamp:
        """Open time (UTC) of the latest candle processed."""
        return self._times[-1]

    def on_candles(self, timestamp: pd.Timestamp, bars: dict[str, tuple[float, float, float, float, float]]
                   ) -> dict[str, BarUpdate]:
        """Process one closed candle of every symbol: ``bars[symbol] = (open, high, low, close, atr)``
        (USDT; ATR at the close) at the UTC open ``timestamp``. Returns each symbol's :class:`BarUpdate`.

        Raises:
            ValueError: a symbol's candle is missing, or the time is not after the previous candle's.
        """
        b, i = self.book, self.book.n
        time = pd.Timestamp(timestamp)
        ts_ms = int(time.value // 1_000_000)
        missing = [s for s in self.symbols if s not in bars]
        if missing:
            raise ValueError(f"no {time} candle for {', '.join(missing)}: a portfolio needs every symbol's candle")
        if i and ts_ms <= b.ts[i - 1]:
            raise ValueError(f"candle {time} is not after the previous candle {self._times[-1]}")
        b.reserve(i + 2)
        b.ts[i] = ts_ms
        for k, s in enumerate(self.symbols):
            b.o[k, i], b.h[k, i], b.lo[k, i], b.c[k, i], b.atr[k, i] = bars[s]
            events = self._funding[s]
            if events is not None:
                b.rate[k, i], b.fmark[k, i] = bar_funding(events, self._funding_ms[s], self._mark[s], self.timeframe,
                                                          b.ts, b.o[k], i, self._times[-1] if i else None, time)
        counts, n_account = b.counts(), int(b.pstate[PK.PS_NEVENTS])
        b.run(i, i + 1)
        self._times.append(time)
        n1 = int(b.pstate[PK.PS_NEVENTS])
        self.account_events = (events_frame(b.pevents[n_account:n1], pd.Series(self._times)) if n1 > n_account
                               else None)
        return self._updates(i, counts)

    def add_funding(self, symbol: str, events: pd.DataFrame) -> int:
        """``symbol``'s funding-rate events published since the start (a live feed), as
        :meth:`perpbot.exchange.simulated.SimulatedExchange.add_funding`. Returns the number added."""
        if not self.book.configs[self.symbols.index(symbol)].funding:
            return 0
        last = int(self.book.ts[self.book.n - 1]) if self.book.n else None
        merged, added = merge_funding(self._funding[symbol], events, last)
        if added and merged is not None:
            self._funding[symbol] = merged
            self._funding_ms[symbol] = merged["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        return added

    def funding_events(self, symbol: str) -> pd.DataFrame | None:
        """``symbol``'s known funding-rate events (``timestamp``, ``funding_rate``), or None."""
        return self._funding[symbol]

    def set_signal(self, symbol: str, signal: int, size: float = 1.0) -> None:
        """``symbol``'s signal (+1 / -1 / 0) decided at the latest close and its entry-size scale."""
        if self.book.n == 0:
            raise RuntimeError("set_signal before any candle")
        if signal not in (-1, 0, 1) or not (np.isfinite(size) and size >= 0):
            raise ValueError(f"signal must be -1, 0 or +1 and size finite >= 0, got {signal!r}, {size!r}")
        k = self.symbols.index(symbol)
        self.book.signal[k, self.book.n - 1] = signal
        self.book.size[k, self.book.n - 1] = size

    def close_all(self, manual: bool = False) -> dict[str, BarUpdate]:
        """Close every position at the latest close (end of the replay, or ``manual``: a force-exit)."""
        counts = self.book.counts()
        self.book.close_all(manual)
        return self._updates(self.book.n - 1, counts)

    def position(self, symbol: str) -> dict:
        """``symbol``'s open position (see :attr:`perpbot.exchange.simulated.SimulatedExchange.position`)."""
        return self.book.position(self.symbols.index(symbol))

    @property
    def equity(self) -> float:
        """The account's equity (USDT) at the latest close."""
        return float(self.book.pequity[self.book.n - 1]) if self.book.n else float(self.book.capital)

    def result(self) -> PortfolioResult:
        """Everything so far, in the portfolio backtest's format."""
        return self.book.result(pd.Series(pd.DatetimeIndex(self._times)), self.bar_ms)

    def _updates(self, bar: int, counts: np.ndarray) -> dict[str, BarUpdate]:
        b = self.book
        after = b.counts()
        changed = bool((after != counts).any())
        times = pd.Series(pd.DatetimeIndex(self._times) if changed else pd.DatetimeIndex([], tz="UTC"))
        out = {}
        for k, s in enumerate(self.symbols):
            (t0, e0, f0), (t1, e1, f1) = counts[k], after[k]
            pos = float(b.state[k, K.S_SIDE] * b.state[k, K.S_QTY])
            if (t0, e0, f0) == (t1, e1, f1):  # the common case: nothing happened, no frames to build
                if self._empty is None:
                    self._empty = (trades_frame(b.trades_buf[k, :0], times, 1.0), events_frame(b.events_buf[k, :0], times),
                                   funding_frame(b.funding_buf[k, :0], times))
                trades, events, funding = self._empty
                out[s] = BarUpdate(bar, trades, events, funding, equity=self.equity, position=pos)
                continue
            trades = trades_frame(b.trades_buf[k, t0:t1], times, b.configs[k].leverage)
            trades["trade_id"] += t0
            out[s] = BarUpdate(bar=bar, trades=trades, risk_events=events_frame(b.events_buf[k, e0:e1], times),
                               funding=funding_frame(b.funding_buf[k, f0:f1], times), equity=self.equity, position=pos)
        return out
