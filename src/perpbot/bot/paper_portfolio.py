"""The bot loop over several symbols in one paper account: one candle of every symbol per cycle.

Each cycle (the candles of every symbol that closed at one time):

1. each symbol's signal engine takes its candle (trailing window of ``live_window`` candles, ATR);
2. the portfolio exchange (:class:`perpbot.exchange.simulated_portfolio.PortfolioExchange`) runs
   the bar for every symbol on the shared account: the previous decisions act at the open, within
   the risk budget, then stops, take-profits, liquidations and funding;
3. each symbol's strategy decides on its own window only (the same rule or model as the single-symbol
   paper bot), and the signal goes to the exchange for the next open; a pause (``BotControl``) holds
   every symbol's new entries, a force-exit closes every position;
4. with a ledger, each symbol's run (one run per symbol, its note naming the portfolio) gets its
   trades, risk events, funding and the account's equity, through the paper bot's recorder (one
   transaction per cycle that has something to record, else every ``flush_every`` cycles). A
   portfolio run is not resumable: an interrupted one is marked ``failed``.

Replaying the symbols' recorded candles gives the trades of the portfolio backtest on the same
candles (tests/test_portfolio.py).
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import pandas as pd

from perpbot.bot.control import BotControl
from perpbot.bot.paper_ledger import CHECKPOINT_VERSION, PaperRecorder
from perpbot.bot.recorder import RiskHaltEvent, last_signal, publish, publish_cycle, publish_fills
from perpbot.exchange.simulated_portfolio import PortfolioExchange
from perpbot.logs import get_logger
from perpbot.sim.config import AccountConfig
from perpbot.sim.portfolio import PortfolioBudget, PortfolioResult
from perpbot.strategy.engine import SignalEngine

log = get_logger("perpbot.bot")


class PortfolioPaperBot:
    """Drives a :class:`PortfolioExchange` with one strategy on every symbol, candle by candle.

    Args:
        settings: per symbol (in the loop's order), its :class:`perpbot.config.Settings` (the
            symbol's files and market rules; the first one's capital, limits and budget are the account's).
        strategy: a rule strategy or plug-in (a model strategy needs ``bundles``).
        bundles: per symbol, its loaded model (model strategies), or None.
        funding / mark: per symbol, funding-rate events and mark candles.
        keep_last: decisions / latencies kept in memory per symbol (None: all).
        ledger / run_ids: where to record (per symbol, its run id); None records nothing.
    """

    def __init__(self, settings: dict, strategy: str, *, bundles: dict | None = None,
                 funding: dict | None = None, mark: dict | None = None, control: BotControl | None = None,
                 keep_last: int | None = None, ledger=None, run_ids: dict | None = None,
                 flush_every: int = 100) -> None:
        bundles, funding, mark = bundles or {}, funding or {}, mark or {}
        self.symbols = list(settings)
        first = settings[self.symbols[0]]
        self.settings = settings
        self.strategy = strategy
        self.engines = {s: SignalEngine(settings[s], strategy, bundle=bundles.get(s), funding=funding.get(s),
                                        mark=mark.get(s)) for s in self.symbols}
        configs = {s: AccountConfig.for_strategy(settings[s], strategy) for s in self.symbols}
        self.markets = {s: {"symbol": s, "tick_size": c.tick_size, "lot_size": c.lot_size} for s, c in configs.items()}
        self.exchange = PortfolioExchange(self.symbols, configs, PortfolioBudget.from_settings(first),
                                          first.timeframe, {s: e.funding for s, e in self.engines.items()}, mark)
        self.warmup = first.warmup_bars
        self.decisions: dict[str, deque] = {s: deque(maxlen=keep_last) for s in self.symbols}
        self.latency_ms: deque[float] = deque(maxlen=keep_last)
        self.control = control or BotControl(mode="paper", strategy=strategy, symbol=",".join(self.symbols),
                                             timeframe=first.timeframe)
        self.control.update_status(running=True)
        self._bar = pd.Timedelta(milliseconds=int(self.exchange.bar_ms))
        self.recorders = ({s: PaperRecorder(ledger, int(run_ids[s]), self.control, flush_every) for s in self.symbols}
                          if ledger is not None and run_ids else {})

    def on_candles(self, ts: pd.Timestamp, bars: dict[str, tuple[float, float, float, float, float]]) -> dict[str, int]:
        """Run one cycle: ``bars[symbol] = (open, high, low, close, volume)`` of the candles opened at
        ``ts`` (UTC; USDT prices, base volume). Returns each symbol's signal for the next open."""
        t0 = time.perf_counter()
        frames = {s: self.engines[s].push(ts, *bars[s]) for s in self.symbols}
        updates = self.exchange.on_candles(ts, {s: (*bars[s][:4], self.engines[s].atr(frames[s]))
                                                for s in self.symbols})
        if self.control.take_force_exit():
            for s, u in self.exchange.close_all(manual=True).items():
                updates[s].trades = pd.concat([updates[s].trades, u.trades], ignore_index=True)
        bar = self.exchange.n - 1
        signals = {}
        for s in self.symbols:
            signal, proba = 0, None
            if bar + 1 >= self.warmup:
                signal, proba = self.engines[s].decide(frames[s])
            if self.control.paused:
                signal = 0  # no new positions; stops and take-profits stay active
            self.exchange.set_signal(s, signal, self.engines[s].size)
            self.decisions[s].append((ts, bar, signal, proba))
            signals[s] = signal
            for t in (updates[s].trades.itertuples() if len(updates[s].trades) else ()):
                log.info("trade", symbol=s, trade_id=t.trade_id, side=t.side, qty=t.qty, entry=t.entry_price,
                         exit=t.exit_price, reason=t.exit_reason, pnl=round(t.pnl, 4))
        self._publish(ts, bar, updates, signals)
        self._record(ts, updates)
        self.latency_ms.append((time.perf_counter() - t0) * 1e3)
        positions = {s: p for s in self.symbols if (p := self.exchange.position(s))["side"] != 0}
        self.control.update_status(equity=self.exchange.equity, positions=positions, candle_time=str(ts),
                                   cycles=bar + 1)
        return signals

    def _publish(self, ts: pd.Timestamp, bar: int, updates: dict, signals: dict) -> None:
        bus, equity = self.control.events, self.exchange.equity
        for s in self.symbols:
            publish_fills(bus, updates[s].trades, self.exchange.position(s), updates[s].risk_events, bar,
                          self.markets[s])
        account = self.exchange.account_events
        for e in (account.itertuples() if account is not None else ()):  # the account's halts, once for all
            publish(bus, RiskHaltEvent(e.event, float(e.value)))
        first = self.symbols[0]
        publish_cycle(bus, bar, ts, equity, updates[first].position, last_signal(signals[first], ts, None))

    def _record(self, ts: pd.Timestamp, updates: dict, final: bool = False) -> None:
        equity = self.exchange.equity
        for s, rec in self.recorders.items():
            u = updates[s]
            if final:  # the end-of-replay close: its trades, and the last candle's equity corrected
                if len(u.trades):
                    rec.trades.append(u.trades)
                rec.correct_last_equity((ts + self._bar, equity, 0.0))
            else:
                rec.add(u, (ts + self._bar, equity, u.position), None, None)
                if self.exchange.account_events is not None:  # the account's halts are every symbol's
                    rec.risk_events.append(self.exchange.account_events)
                    rec.urgent = True
            if final or rec.due:
                rec.write(self._checkpoint(final), final=final)

    def _checkpoint(self, closed: bool) -> dict:
        n = self.exchange.n
        return {"version": CHECKPOINT_VERSION, "strategy": self.strategy, "portfolio": self.symbols, "bars": n,
                "candle_time": self.exchange.last_time.isoformat() if n else None, "closed": closed}

    def finish(self) -> PortfolioResult:
        """End of the replay: close every position at the last close, write the rest to the ledger
        (raises if it refuses); the whole run's result."""
        updates = self.exchange.close_all()
        try:
            if self.exchange.n:
                self._record(self.exchange.last_time, updates, final=True)
        finally:
            self.control.update_status(running=False, equity=self.exchange.equity, positions={})
        return self.exchange.result()


def replay_portfolio(bot: PortfolioPaperBot, candles: dict[str, pd.DataFrame], progress=None) -> PortfolioResult:
    """Feed ``candles`` (per symbol, validated frames on one timeline) to ``bot`` candle by candle
    and finish; ``progress(done, total)`` after each cycle. Raises ValueError when the symbols'
    candle times differ."""
    first = candles[bot.symbols[0]]
    stamps = list(first["timestamp"])
    cols = {}
    for s in bot.symbols:
        c = candles[s]
        if len(c) != len(first) or not np.array_equal(c["timestamp"].to_numpy(), first["timestamp"].to_numpy()):
            raise ValueError(f"{s}'s candles are not on {bot.symbols[0]}'s timeline")
        cols[s] = np.column_stack([c[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")])
    n = len(stamps)
    for i in range(n):
        bot.on_candles(stamps[i], {s: (float(cols[s][i, 0]), float(cols[s][i, 1]), float(cols[s][i, 2]),
                                       float(cols[s][i, 3]), float(cols[s][i, 4])) for s in bot.symbols})
        if progress is not None:
            progress(i + 1, n)
    return bot.finish()
