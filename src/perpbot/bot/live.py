"""The bot loop in live mode: closed candles from the venue, one decision per candle, real orders.

:class:`LiveBot` is woken by :class:`~perpbot.exchange.feed.CandleFeed` at each candle close (made
for 1-5 minute timeframes). Each cycle:

1. the candle joins the trailing window and the decision code shared with the paper loop
   (:class:`~perpbot.strategy.engine.SignalEngine`: features -> model -> threshold, or a baseline
   rule) computes the signal, while position and balance are fetched concurrently;
2. the exchange's state is taken in, in memory only: the last entry's fill (a partial fill
   makes a trade of the filled size), a trade the venue closed (its TP/SL; the PnL sign for
   the cooldown estimated from the equity change), a position the bot did not know (adopted);
3. risk (:class:`~perpbot.bot.live_risk.LiveRisk`, the kernel's rules on live equity): halts at
   the close, then an opposite signal closes the position (reduce-only) and a flat account enters
   with the stop-loss and take-profit attached, sized from the live equity; paused -> no new
   positions; a force-exit closes at market;
4. after the orders are sent: the ledger catches up (the entry's fill; a partial fill's rest
   cancelled; closed trades from the venue's fills and funding bills, with the exact cooldown,
   :mod:`perpbot.bot.live_trades`), a new fill gets its stop / take-profit re-placed from the
   actual fill price (and the optional trailing stop), :func:`~perpbot.exchange.reconcile.reconcile`
   repairs the ledger/exchange, and the cycle is recorded and published.

**Stale candles.** A candle that reaches the bot more than ``max_entry_lag`` bars after its close
(exchange clock; e.g. the candles a reconnect catches up after an outage) still joins the window
and runs exits, fills, protection and reconciliation, but opens no position: the entry is vetoed
with a ``stale_candle`` risk event (value = the lag in bars; detail JSON {close_lag_ms,
max_entry_lag}), checked before the kernel's own vetoes. An opposite signal still closes.

**Clock skew.** A request the venue refuses for an expired timestamp re-syncs the ccxt clock
and is sent once more (:mod:`perpbot.exchange.clock`, inside the executor). A cycle that still
fails for it counts; after ``clock_skew_halt_cycles`` such cycles in a row new entries are halted
(``clock_skew_halt`` risk event, value = cycles; an ``error`` event for the notifiers; entries are
then vetoed as ``halted`` with value 8, :class:`~perpbot.types.RiskEvent`); exits and stops keep
running. The halt lifts after as many complete cycles in a row (``clock_skew_cleared`` row).

**Latency** (recorded per cycle as a ``cycle_latency`` risk-event row, value in ms, detail JSON
{order_sent, signal, wait_ms, close_lag_ms, reconcile}, and in the ``cycle`` log line): from the
moment the closed candle reaches the bot to just before the first order's HTTP request leaves
(``order_sent`` true; the order's own network time excluded), or, when no order is due, to the
end of the decision. The position/balance request runs concurrently with the decision;
``wait_ms`` is the time still spent waiting for its answer after the decision (network, so
latency - wait_ms is the bot's own processing time). ``close_lag_ms`` is the candle's close
time (exchange clock) to its arrival (the feed's delay).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
import math
import time
from typing import Callable

import pandas as pd

from perpbot.bot.control import BotControl, SymbolControl
from perpbot.bot.live_budget import LiveBudget
from perpbot.bot.live_risk import LiveRisk, live_config
from perpbot.bot.live_orders import LiveOrders
from perpbot.bot.recorder import RiskHaltEvent, publish
from perpbot.bot.live_trades import OpenTrade, Pending
from perpbot.bot.promotion import ModelInbox, promote_now
from perpbot.strategy.engine import SignalEngine
from perpbot.data import timeframe_to_ms
from perpbot.exchange import venue_params
from perpbot.exchange.ccxt_adapter import describe_error
from perpbot.exchange.clock import is_timestamp_error
from perpbot.exchange.reads import funding_events
from perpbot.exchange.reconcile import ReconcileReport, reconcile
from perpbot.logs import get_logger
from perpbot.sim.accounting import trade_fee
from perpbot.types import RiskEvent

log = get_logger("perpbot.live")
class LiveBot(LiveOrders):
    """Live trading loop of one symbol (module docstring).

    Args:
        settings: :class:`perpbot.config.Settings`.
        executor: a :class:`~perpbot.exchange.executor.Executor` (not started yet).
        strategy: "ai" (needs ``bundle``) or a baseline with a stop-loss.
        ledger / run_id: the run to record into (None: record nothing).
        control: :class:`BotControl` shared with operator interfaces (a node over several symbols:
            this symbol's :class:`SymbolControl` of the node's).
        clock: exchange time in ms UTC for the candles' close lag (default: the feed's clock in
            :meth:`run`, else the local clock corrected by the venue's measured time difference).
    """

    def __init__(self, settings, executor, strategy: str, *, bundle=None, ledger=None, run_id: int | None = None,
                 control: BotControl | SymbolControl | None = None, flush_every: int = 1,
                 clock: Callable[[], int] | None = None) -> None:
        self.settings, self.ex, self.strategy, self.bundle = settings, executor, strategy, bundle
        self.signals = SignalEngine(settings, strategy, bundle=bundle)
        self.ledger, self.run_id = ledger, run_id
        self.control = control or BotControl(mode="live", strategy=strategy, symbol=settings.symbol,
                                             timeframe=settings.timeframe)
        self.events = self.control.events
        executor.events = executor.events or self.events
        executor.clock = self._now
        self.tf_ms = timeframe_to_ms(settings.timeframe)
        self.cfg = live_config(settings, strategy)  # venue rules replace lot/tick/fees at start()
        self.risk = LiveRisk(self.cfg, self.tf_ms, self.settings.clock_skew_halt_cycles)
        self.trade: OpenTrade | None = None
        self._unfinished: list[OpenTrade] = []  # closed trades whose fills could not be read yet
        self.pending: Pending | None = None
        self.pending_order: dict | None = None  # the venue's answer for a resting limit entry (its last look-up)
        self.limit_gone: Pending | None = None  # a limit entry the venue cancelled unfilled (post-only rejected)
        self.next_trade_no = 1
        self.last_ts: int | None = None
        self.atr = math.nan
        self.latency_ms: deque[float] = deque(maxlen=1000)  # the last cycles' latencies (ms)
        self.cycles = 0
        self.flush_every = max(1, int(flush_every))
        self._buf: dict[str, list] = {"risk": [], "equity": [], "pred": []}
        self._open_calls = 1  # recorded calls without a realised label (1: look once, a resumed run may have some)
        self.report: ReconcileReport | None = None
        self._funding_next_ms = 0
        self.clock = clock
        self._feed_clock: Callable[[], int] | None = None
        self.max_lag_ms = float(settings.max_entry_lag) * self.tf_ms
        self.inbox: ModelInbox | None = None  # `perpbot models promote` swaps the model
        self.budget: LiveBudget | None = None  # a node over several symbols: its shared risk budget
        self.entering = None  # the entry plan whose order is being sent (the node's budget counts it)
        self.retired = False  # --symbols auto:N dropped this symbol: no new entry; the loop ends once flat

    def now_ms(self) -> int:
        """Exchange time in ms UTC: ``clock()``, else the running feed's clock, else the local time
        minus ccxt's measured time difference (local - venue)."""
        clock = self.clock or self._feed_clock
        if clock is not None:
            return int(clock())
        return int(time.time() * 1000) - self.ex.time_difference_ms()

    def _now(self) -> pd.Timestamp:
        """Exchange time of the loop: the close of the last candle (its open + timeframe), at
        least the time the bot saw last; before the first candle, the local UTC clock."""
        if self.last_ts is None:
            return pd.Timestamp.now(tz="UTC")
        return pd.Timestamp(self.last_ts + self.tf_ms, unit="ms", tz="UTC")

    # ------------------------------------------------------------------ start-up
    async def start(self, resume: bool = False) -> ReconcileReport:
        """Start the executor (checks, margin, leverage), load the candle history of the window,
        restore the risk state of a resumed run, reconcile and adopt any open position."""
        venue_params.check_live(self.ex.venue_id, self.settings.entry_order)  # a venue whose stops it manages
        rules = self.ex.rules or await self.ex.startup()
        self.cfg = live_config(self.settings, self.strategy, rules)
        self.risk = LiveRisk(self.cfg, self.tf_ms, self.settings.clock_skew_halt_cycles)
        self.risk.plan_entry(0, 1, 100.0, 1.0, 1000.0)  # compile the sizing functions now, not in the first order
        if self.ledger is not None:
            if resume:
                self.risk.restore(self.ledger, self.run_id)
            done = self.ledger.trades(self.run_id)
            self.next_trade_no = int(done["trade_id"].max()) + 1 if len(done) else 1
        now = await self.ex.server_time()
        for row in await self._history(int(now)):
            self.signals.push(pd.Timestamp(row[0], unit="ms", tz="UTC"), *map(float, row[1:6]))
            self.last_ts = int(row[0])
        await self._refresh_funding(int(now))
        if len(self.signals.window):
            self.atr = self.signals.atr(pd.DataFrame(list(self.signals.window), columns=SignalEngine.COLUMNS))
        self.report = await reconcile(self.ex, self.ledger, self.run_id, atr=self.atr, cfg=self.cfg, record="always",
                                      bar=self.ex.bar_of(self.last_ts or 0))
        if self.report.position is not None:
            self._adopt(self.report.position)
            await self._adopt_levels(self.trade)
        # the position held at start-up (a restart after a crash adopts it) is shown before the first candle
        self.control.update_status(running=True, run_id=self.run_id, mode="live", reconcile=self.report.summary(),
                                   demo=not self.ex.real_money, position=self._position_status(),
                                   equity=self.report.equity)
        log.info("live_started", run_id=self.run_id, candles=len(self.signals.window), reconcile=self.report.summary())
        return self.report

    async def _history(self, now_ms: int) -> list:
        """Closed candles of the last ``live_window`` bars (REST pages, oldest first)."""
        return await self.ex.closed_candles(self.settings.timeframe, self.tf_ms, now_ms, self.settings.live_window)

    async def _refresh_funding(self, now_ms: int) -> None:
        if self.signals.funding is None and not (self.settings.funding and self.strategy != "buy-and-hold"
                                                 and self.bundle is not None):
            return
        if now_ms < self._funding_next_ms:
            return
        rows = await self.ex.funding_rates(100)
        if rows:
            self.signals.funding = funding_events(rows)
            self._funding_next_ms = int(rows[-1]["timestamp"]) + 8 * 3_600_000

    def _adopt(self, pos) -> None:
        """Take over a position the bot did not open (levels filled in by :meth:`_adopt_levels`)."""
        if self.trade is not None and self.trade.side == pos.side:
            self.trade.qty = pos.qty
            return
        opened = int(pos.opened_ms or time.time() * 1000)
        self.trade = OpenTrade(self.next_trade_no, pos.side, pos.qty, pos.entry_price, opened, self.ex.bar_of(opened),
                               trade_fee(pos.qty, pos.entry_price, self.cfg.taker_fee), math.nan, math.nan,
                               liquidation_price=pos.liquidation_price, margin=pos.margin, adopted=True,
                               leverage=pos.leverage if pos.leverage is not None else self.ex.leverage)
        self.next_trade_no += 1
        log.warning("position_adopted", side=pos.side, qty=pos.qty, entry=pos.entry_price)

    async def _adopt_levels(self, trade: OpenTrade) -> None:
        """Stop-loss / take-profit of an adopted position, from its venue-side protection orders."""
        close_side = "sell" if trade.side > 0 else "buy"
        plans = await self.ex.protection_orders()
        trig: dict[str, float] = {}
        for p in plans:
            if p.get("side") == close_side:
                trig.update(venue_params.protection_levels(self.ex.venue_id, p))
        trade.stop_loss = float(trig.get("stop_loss") or math.nan)
        trade.take_profit = float(trig.get("take_profit") or math.nan)

    # ------------------------------------------------------------------ the cycle
    async def on_candle(self, candle) -> dict | None:
        """One cycle for a closed :class:`~perpbot.exchange.feed.Candle`; returns the cycle record
        (None for a candle already processed). Never raises for exchange trouble: the cycle is
        skipped, an ``error`` event published and the error counted."""
        t0 = time.perf_counter()
        if self.last_ts is not None and candle.timestamp <= self.last_ts:
            return None
        self.last_ts = candle.timestamp
        close_lag = self.now_ms() - (candle.timestamp + self.tf_ms)
        try:
            out = await self._cycle(candle, t0, close_lag)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            msg = describe_error(exc, f"cycle {candle.time}")
            log.error("cycle_failed", error=msg)
            self.events.publish("error", message=msg)
            self.control.update_status(errors=self.control.status().get("errors", 0) + 1)
            n = self.risk.on_timestamp_refused() if is_timestamp_error(exc) else None
            if n is not None:
                self._clock_halt(self.ex.bar_of(candle.timestamp), n, msg)
            return None
        return out

    def _clock_halt(self, bar: int, n: int, msg: str) -> None:
        """Record and announce the clock-skew halt (risk event + ``error`` event)."""
        text = (f"clock skew: the venue refused the request timestamps of {n} cycles in a row and re-syncing the "
                f"clock did not help; new entries are halted until {self.settings.clock_skew_halt_cycles} cycles in a "
                f"row go through (check the machine's clock / NTP); last error: {msg}")
        log.error("clock_skew_halt", cycles=n, error=msg)
        self.flush()
        self.ex.risk_event(RiskEvent.CLOCK_SKEW_HALT.label, float(n), json.dumps({
            "cycles": n, "time_difference_ms": self.ex.time_difference_ms(), "error": msg}), bar)
        self.events.publish("error", message=text)
        self.control.update_status(clock_skew_halt=True)

    async def _cycle(self, candle, t0: float, close_lag: float) -> dict:
        frame = self.signals.push(candle.time, candle.open, candle.high, candle.low, candle.close, candle.volume)
        self.atr = self.signals.atr(frame)
        bar = self.ex.bar_of(candle.timestamp)
        promote_now(self, candle.time, bar)  # a promoted model decides from this candle on
        pre = asyncio.ensure_future(self._pre())
        try:
            signal, proba = (0, None)
            if len(self.signals.window) >= self.settings.warmup_bars:
                signal, proba = self.signals.decide(frame)
        except BaseException:
            pre.cancel()
            raise
        raw_signal = signal
        if self.control.paused or self.retired:
            signal = 0
        t_decided = time.perf_counter()
        snap, pending_order = await pre
        wait = (time.perf_counter() - t_decided) * 1e3  # blocked on the venue's answer after deciding
        force = self.control.take_force_exit()  # after the venue answered: a failed cycle keeps the request
        # ---- before the orders: only what the decision needs, in memory (no request, no ledger write)
        rows, closed, pos = [], [], snap.position
        if self.trade is not None and (pos is None or pos.side != self.trade.side):
            closed.append(self.trade)  # closed by the venue's TP/SL, or by our exit order
            self.trade = None
        entry = self._take_fill(pending_order)
        new_fill = entry[0] if entry else None
        if new_fill is not None and (pos is None or pos.side != new_fill.side):
            closed.append(new_fill)  # filled and closed within the same candle
            self.trade = None
        resized = self.trade is not None and pos is not None and abs(pos.qty - self.trade.qty) > self.ex.rules.lot / 2
        if resized:
            self.trade.qty = pos.qty
        adopted = self.trade is None and pos is not None and self.pending is None and not closed
        if adopted:
            self._adopt(pos)
        cooldown_before = self.risk.cooldown_until
        estimates = {t.trade_no: self._estimated_pnl(t, pos, snap.equity, candle.open) for t in closed}
        for t in closed:  # the kernel's cooldown needs the sign of the PnL now: estimated, exact below
            self.risk.on_trade_closed(bar, estimates[t.trade_no])
        for event, value in self.risk.on_close(candle.timestamp, snap.equity):
            rows.append((event, value, None))
            publish(self.events, RiskHaltEvent(event, float(value)))
        lifted = self.risk.on_cycle_ok()
        if lifted is not None:
            rows.append(("clock_skew_cleared", float(lifted), None))
            log.warning("clock_skew_cleared", cycles=lifted)
            self.control.update_status(clock_skew_halt=False)
        sent = await self._orders(signal, force, bar, candle.close, snap.equity, rows, close_lag)
        t_order = min((r.sent_at for r in sent if r.sent_at is not None), default=None)
        latency = ((t_order if t_order is not None else time.perf_counter()) - t0) * 1e3
        self.latency_ms.append(latency)
        # ---- after the orders: ledger, fills, protection, reconciliation, records
        try:
            if entry is not None:
                await self._settle_entry(*entry)
            self.risk.cooldown_until = cooldown_before
            for t in closed + self._unfinished:
                try:
                    await self._finish_trade(t, None if new_fill is None else new_fill.entry_order_id)
                    if t in self._unfinished:
                        self._unfinished.remove(t)
                except Exception as exc:  # fills not readable now: estimated cooldown, retried next cycle
                    log.error("trade_record_failed", trade=t.trade_no, error=describe_error(exc))
                    self.risk.on_trade_closed(bar, estimates.get(t.trade_no, -1.0))
                    if t not in self._unfinished:
                        self._unfinished.append(t)
            if adopted and self.trade is not None:
                await self._adopt_levels(self.trade)
            if new_fill is not None and self.trade is new_fill:
                await self._protect_fill(new_fill, bar, entry[1].plan if entry else None)
            elif (resized or adopted) and pos is not None:
                self._snapshot(pos)
            self.report = await reconcile(self.ex, self.ledger, self.run_id, atr=self.atr, cfg=self.cfg, bar=bar,
                                          scan_ledger=False, snapshot=None if sent or closed or entry else snap)
            await self._refresh_funding(candle.timestamp + self.tf_ms)
        except Exception as exc:  # the next cycle tries again
            log.error("after_orders_failed", error=describe_error(exc))
            self.report = None
        rec = "failed" if self.report is None else self.report.summary()
        detail = json.dumps({"order_sent": t_order is not None, "signal": raw_signal, "wait_ms": round(wait, 3),
                             "close_lag_ms": round(close_lag, 1), "reconcile": rec})
        rows.append(("cycle_latency", latency, detail))
        self.cycles += 1
        self._record(candle, bar, snap, rows, raw_signal, proba)
        if sent or closed:
            self.flush()
        out = {"bar": bar, "time": candle.time.isoformat(), "signal": raw_signal, "latency_ms": latency, "wait_ms": wait,
               "orders": [r.cid for r in sent], "equity": snap.equity, "closed": [t.trade_no for t in closed]}
        self._publish(candle, raw_signal, proba, snap, latency, rec)
        log.info("cycle", bar=bar, time=str(candle.time), signal=raw_signal, equity=round(snap.equity, 4),
                 position=0.0 if self.trade is None else self.trade.side * self.trade.qty, latency_ms=round(latency, 3),
                 orders=len(sent), reconcile=rec)
        return out

    # ------------------------------------------------------------------ running
    async def run(self, feed) -> None:
        """Process candles from ``feed`` (a :class:`~perpbot.exchange.feed.CandleFeed` starting after
        the history, ``last_timestamp=bot.last_ts``) until it stops; then flush the ledger rows.
        Without an explicit ``clock`` the feed's exchange clock measures the candles' close lag."""
        self._feed_clock = feed.now_ms

        async def cycle(candle):
            out = await self.on_candle(candle)
            if self.retired and self.trade is None and self.pending is None:
                log.info("symbol_retired", symbol=self.settings.symbol, run_id=self.run_id)
                feed.stop()  # dropped from the node's symbols and flat: this loop is done
            return out

        try:
            await feed.run(cycle)
        finally:
            self.flush()
            self.control.update_status(running=False)
