"""Orders of the live loop (a part of :class:`~perpbot.bot.live.LiveBot`): the pending entry's
fill taken over as a trade, its stop-loss / take-profit re-placed from the actual fill, and the
orders of one cycle's decision (exit on an opposite signal or a forced exit, then the entry the
risk rules allow)."""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np

from perpbot.bot.live_risk import EntryPlan, levels
from perpbot.bot.recorder import EntryEvent, publish, side_label
from perpbot.bot.live_trades import OpenTrade, Pending, TradeRecords
from perpbot.exchange import venue_params
from perpbot.logs import get_logger
from perpbot.sim.accounting import trade_fee, unrealized_pnl
from perpbot.sim.sizing import recent_levels
from perpbot.types import ExitReason, RiskEvent

log = get_logger("perpbot.live")


class LiveOrders(TradeRecords):
    """Order placement and fill handling of the live loop (reads the loop's state)."""

    async def _pre(self):
        """Position + balance, and the pending entry's order, concurrently."""
        if self.pending is None:
            return await self.ex.snapshot(), None
        return await asyncio.gather(self.ex.snapshot(), self.ex.lookup(self.pending.cid))

    def _take_fill(self, order) -> tuple[OpenTrade | None, Pending, dict | None] | None:
        """The pending entry's state (in memory): (the new trade or None, the pending entry, the
        order or None when the venue does not have it); None while it is still unfilled or the
        venue could not be asked. A partial fill makes a trade of the filled size."""
        p = self.pending
        if p is None or (order is not None and not isinstance(order, dict)):
            return None
        if order is None:  # the venue does not have it: it never reached it
            self.pending = None
            log.error("entry_lost", cid=p.cid)
            return None, p, None
        filled = float(order.get("filled") or 0.0)
        if order.get("status") == "open" and filled <= 0:
            self.pending_order = order
            return None  # not filled yet (a market order fills at the next trade; a limit rests)
        self.pending = None
        if filled <= 0:
            if p.until_bar is not None:
                self.limit_gone = p  # a post-only limit the venue cancelled: would have taken liquidity
            return None, p, order
        price = float(order.get("average") or order.get("price"))
        ts = int(order.get("lastTradeTimestamp") or order.get("timestamp") or self.last_ts)
        # the kernel's levels, from the real fill (the levels' stops: the ones planned when the fill went beyond one)
        sl, tp, _ = levels(self.cfg, p.plan.side, price, p.plan.atr, p.plan.support, p.plan.resistance)
        if math.isnan(sl) and self.cfg.stop_mode == "levels":
            sl, tp = p.plan.stop_loss, p.plan.take_profit
        self.trade = OpenTrade(p.trade_no, p.plan.side, filled, price, ts, self.ex.bar_of(ts),
                               abs(float((order.get("fee") or {}).get("cost") or 0.0)), sl, tp, order.get("id"),
                               equity_before=p.equity_before, leverage=p.plan.leverage)
        return self.trade, p, order

    async def _settle_entry(self, trade: OpenTrade | None, p: Pending, order: dict | None) -> None:
        """Ledger side of :meth:`_take_fill`: a partial fill's rest is cancelled first, then the
        order is settled (status, fill) and the entry published."""
        if order is not None and order.get("status") == "open":
            await self.ex.cancel(order)
            again = await self.ex.lookup(p.cid)
            order = again if isinstance(again, dict) else order
        row = self.ex.unsettled.get(p.cid)
        if row is not None:
            self.ex.settle(row, order)
        if trade is not None:
            publish(self.events, EntryEvent(side_label(trade.side), trade.qty, trade.entry_price, trade.stop_loss,
                                            trade.take_profit, None, **self.market_info))
            log.info("entry_filled", trade=trade.trade_no, qty=trade.qty, ordered=p.plan.qty, price=trade.entry_price,
                     stop_loss=trade.stop_loss, take_profit=trade.take_profit)

    async def _protect_fill(self, trade: OpenTrade, bar: int, sent: EntryPlan | None = None) -> None:
        """Stop / take-profit from the actual fill, and the trailing stop. Bitget's presets (untracked plan
        orders) are replaced by tracked ones; the trigger orders sent right after the entry ``sent`` on a venue
        without presets (Binance) are tracked already and replaced only where the fill moved a level off them."""
        def moved(new: float, old: float | None) -> float | None:
            kept = old is not None and math.isfinite(new) and math.isfinite(old) and \
                self.ex.round_price(new) == self.ex.round_price(old)
            return None if kept else new
        sl, tp = trade.stop_loss, trade.take_profit
        if sent is not None and not venue_params.preset_protection(self.ex.venue_id):
            sl, tp = moved(sl, sent.stop_loss), moved(tp, sent.take_profit)
        if sl is not None or tp is not None:
            await self.ex.protect(trade.side, trade.qty, stop_loss=sl, take_profit=tp, bar=bar, trade_no=trade.trade_no)
        if self.cfg.trailing_stop > 0:
            await self.ex.trailing_stop(trade.side, trade.qty, trade.entry_price, self.cfg.trailing_stop, bar=bar,
                                        trade_no=trade.trade_no)
        snap = await self.ex.snapshot()
        if snap.position is not None:
            trade.liquidation_price, trade.margin = snap.position.liquidation_price, snap.position.margin
            self._snapshot(snap.position, trade)

    def _recent_levels(self) -> tuple[float, float]:
        """(support, resistance) of the candles before the next one (stop_mode "levels"; the kernel's
        :func:`~perpbot.sim.sizing.recent_levels` on the trailing window), else NaN, NaN."""
        if self.cfg.stop_mode != "levels":
            return math.nan, math.nan
        rows = list(self.signals.window)
        high = np.array([r[2] for r in rows], dtype=np.float64)
        low = np.array([r[3] for r in rows], dtype=np.float64)
        return recent_levels(high, low, len(rows), int(self.cfg.levels_lookback))

    async def _drop_limit(self, p: Pending) -> bool:
        """Cancel the resting limit entry ``p``; True when it is gone unfilled (settled in the ledger),
        False when it could not be cancelled now or filled meanwhile (a trade at the next cycle)."""
        order = self.pending_order
        mine = (None, p.cid, venue_params.client_id(self.ex.venue_id, p.cid))
        if order is None or order.get("clientOrderId") not in mine or not await self.ex.cancel(order):
            return False
        again = await self.ex.lookup(p.cid)
        order = again if isinstance(again, dict) else order
        if float(order.get("filled") or 0.0) > 0:
            return False
        self.pending, self.pending_order = None, None
        row = self.ex.unsettled.get(p.cid)
        if row is not None:
            self.ex.settle(row, order)
        return True

    async def _limit_step(self, signal: int, bar: int, rows: list, force: bool = False) -> Pending | None:
        """The kernel's rules for a resting limit entry (:func:`perpbot.sim.kernel._work_limit`): a new
        signal replaces it (no event); past its last bar it is cancelled; cancelled or rejected unfilled, a
        ``limit_unfilled`` risk event (value = its price), and the entry to send at market instead when
        ``limit_fallback = "market"`` (else None). The operator's pause or force-exit (and a retired loop)
        cancels it too: no position may open behind a pause."""
        p, gone = self.pending, self.limit_gone
        self.limit_gone = None
        if p is not None and p.until_bar is not None:
            if signal != 0 or force or self.control.paused or self.retired:
                await self._drop_limit(p)
                return None
            if bar >= p.until_bar and await self._drop_limit(p):
                gone = p
        if gone is None:
            return None
        rows.append((RiskEvent.LIMIT_UNFILLED.label, float(gone.plan.limit_price), None))
        log.info("limit_entry_unfilled", cid=gone.cid, price=gone.plan.limit_price, fallback=self.cfg.limit_fallback)
        return gone if self.cfg.limit_fallback and not (force or self.control.paused or self.retired) else None

    async def _orders(self, signal: int, force: bool, bar: int, close: float, equity: float, rows: list,
                      close_lag: float = 0.0) -> list:
        t, sent = self.trade, []
        fallback = await self._limit_step(signal, bar, rows, force) if t is None else None
        if t is not None and (force or signal == -t.side):
            reason = ExitReason.MANUAL.label if force else ExitReason.SIGNAL.label
            res = await self.ex.close_position(reason, side=t.side, qty=t.qty, bar=bar, trade_no=t.trade_no)
            sent.append(res)
            if res.ok:
                t.exit_cid, t.exit_reason = res.cid, reason
            if force or not res.ok:
                return sent
            # the kernel sizes the reversal from the balance after this exit, and a losing exit
            # starts the cooldown before the entry: both estimated at the last close
            exit_fee = trade_fee(t.qty, close, self.cfg.taker_fee)
            est = unrealized_pnl(t.side, t.qty, t.entry_price, close) - t.entry_fee - exit_fee
            equity -= exit_fee
            if est < 0 and self.cfg.cooldown_bars > 0:
                rows.append((RiskEvent.COOLDOWN.label, float(bar + 1 + self.cfg.cooldown_bars), "estimated loss of the signal exit"))
                return sent
        elif t is not None or (signal == 0 and fallback is None) or self.pending is not None or force:
            return sent
        if close_lag > self.max_lag_ms:  # a candle caught up late: its signal is no entry any more
            rows.append((RiskEvent.STALE_CANDLE.label, close_lag / self.tf_ms, json.dumps(
                {"close_lag_ms": round(close_lag, 1), "max_entry_lag": self.settings.max_entry_lag})))
            log.warning("stale_candle_entry_vetoed", bar=bar, close_lag_ms=round(close_lag, 1), signal=signal)
            return sent
        budget = self.budget  # a node over several symbols: the account's budget across them
        sup, res = self._recent_levels()
        side, atr, scale = (signal, self.atr, self.signals.size) if signal != 0 or fallback is None else (
            fallback.plan.side, fallback.plan.atr, fallback.plan.scale)  # an unfilled limit's market fallback
        plan = self.risk.plan_entry(bar + 1, side, close, atr, equity, scale,
                                    None if budget is None else budget.veto(self, side),
                                    math.inf if budget is None else budget.margin_cap(self, equity), sup, res,
                                    market=signal == 0)
        if not isinstance(plan, EntryPlan):
            rows.append((plan[0], plan[1], None))
            return sent
        self.entering = plan  # counts in the node's budget while the order is in flight (other loops run meanwhile)
        try:
            res = await self.ex.open_position(plan.side, plan.qty, plan.stop_loss, plan.take_profit, "entry", bar=bar,
                                              ref_price=close, trade_no=self.next_trade_no, leverage=plan.leverage,
                                              price=plan.limit_price)
        finally:
            self.entering = None
        sent.append(res)
        if res.ok:
            limit = math.isfinite(plan.limit_price)
            self.pending = Pending(res.cid, plan, self.next_trade_no, bar, equity if self.trade is None else None,
                                   bar + self.cfg.limit_bars if limit else None)
            self.pending_order = None
            self.next_trade_no += 1
        return sent
