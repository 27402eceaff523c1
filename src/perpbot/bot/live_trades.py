"""Trade bookkeeping of the live loop: open trades, closed trades from the venue's fills, and the
ledger rows / events / status each cycle writes.

Mixed into :class:`perpbot.bot.live.LiveBot` (it uses the bot's ``ex`` executor, ``ledger``,
``run_id``, ``cfg``, ``risk``, ``events``, ``control``). A closed trade is rebuilt from the
venue: the first ``qty`` of fills closing its side after its entry give the exit price (VWAP)
and exit fee, gross PnL = side x qty x (exit - entry) (linear contract), funding = what the
venue's funding bills charged since the entry, PnL = gross - fees - funding (the backtester's
definition); the exit reason is our own exit order's reason, else the venue's order source
(position stop-loss / take-profit / trailing stop / liquidation), else the level it crossed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perpbot.bot.live_risk import EntryPlan
from perpbot.bot.recorder import ExitEvent, cycle_status, last_signal, publish, publish_cycle, side_label
from perpbot.exchange import venue_params
from perpbot.exchange.ccxt_adapter import describe_error
from perpbot.logs import get_logger
from perpbot.types import ExitReason
from perpbot.sim.accounting import initial_margin, trade_fee, unrealized_pnl

log = get_logger("perpbot.live")


@dataclass
class OpenTrade:
    """The position the bot holds: side +1/-1, qty base, prices USDT, times ms UTC, bars = bar numbers."""

    trade_no: int
    side: int
    qty: float
    entry_price: float
    entry_ms: int
    entry_bar: int
    entry_fee: float
    stop_loss: float
    take_profit: float
    entry_order_id: str | None = None
    liquidation_price: float | None = None
    margin: float | None = None
    adopted: bool = False
    exit_cid: str | None = None
    exit_reason: str | None = None
    equity_before: float | None = None
    finish_attempts: int = 0
    leverage: float | None = None  # the leverage it was opened at (None: the configured one)


@dataclass
class Pending:
    """An entry sent and not yet filled."""

    cid: str
    plan: EntryPlan
    trade_no: int
    bar: int
    equity_before: float | None = None
    until_bar: int | None = None  # a limit entry: the last bar it rests in (None: a market entry)


class TradeRecords:
    """Closed trades, position snapshots, cycle rows, events and status of the live bot."""

    def _estimated_pnl(self, t: OpenTrade, pos, equity: float, candle_open: float) -> float:
        """Net PnL (USDT) of a trade just found closed, before its fills are read: the equity change
        since its entry when the account is flat, else an exit at this candle's open."""
        if pos is None and t.equity_before is not None:
            return equity - t.equity_before
        return (unrealized_pnl(t.side, t.qty, t.entry_price, candle_open) - t.entry_fee
                - trade_fee(t.qty, candle_open, self.cfg.taker_fee))

    async def _finish_trade(self, t: OpenTrade, exclude: str | None) -> None:
        """A position the venue no longer holds: exit fills (the first ``t.qty`` closing the side
        after the entry, not order ``exclude``), fees, funding -> ledger trade, cooldown."""
        fills = await self.ex.my_fills(t.entry_ms)
        close_side = "sell" if t.side > 0 else "buy"
        exits, qty = [], 0.0
        for f in sorted(fills, key=lambda f: (f["timestamp"], str(f.get("id")))):
            if (f["side"] == close_side and f.get("order") not in (t.entry_order_id, exclude)
                    and f["timestamp"] >= t.entry_ms and qty < t.qty - 1e-12):
                take = min(float(f["amount"]), t.qty - qty)
                exits.append({**f, "amount": take, "fee": {"cost": abs((f.get("fee") or {}).get("cost") or 0.0)
                                                           * take / float(f["amount"])}})
                qty += take
        if qty < t.qty - self.ex.rules.lot / 2:
            t.finish_attempts += 1
            log.warning("exit_fills_missing", trade=t.trade_no, found=qty, qty=t.qty, attempt=t.finish_attempts)
            if t.finish_attempts < 3:
                raise RuntimeError(f"the exit fills of trade {t.trade_no} are not visible yet ({qty:g} of {t.qty:g})")
        last_close = float(self.signals.window[-1][4])
        price = sum(f["amount"] * f["price"] for f in exits) / qty if qty else last_close
        exit_fee = sum(abs((f.get("fee") or {}).get("cost") or 0.0) for f in exits)
        gross = unrealized_pnl(t.side, qty, t.entry_price, price) if qty else 0.0  # linear: side x qty x (exit - entry)
        exit_ms = max((f["timestamp"] for f in exits), default=(self.last_ts or t.entry_ms))
        funding = 0.0  # > 0 paid: the venue's funding bills while the trade was open
        bills = await self.ex.funding_bills(t.entry_ms)
        if bills is not None:
            funding = -sum(float(f["amount"]) for f in bills if f["timestamp"] is None or f["timestamp"] <= exit_ms)
        reason = await self._exit_reason(t, exits, price)
        pnl = gross - t.entry_fee - exit_fee - funding
        exit_bar = self.ex.bar_of(exit_ms)
        self.risk.on_trade_closed(exit_bar, pnl)
        if self.ledger is not None:
            self._settle_protection(t, reason)
            lev = self.cfg.leverage if t.leverage is None else t.leverage
            row = dict(trade_id=t.trade_no, side=t.side, qty=t.qty, entry_time=pd.Timestamp(t.entry_ms, unit="ms", tz="UTC"),
                       entry_price=t.entry_price, exit_time=pd.Timestamp(exit_ms, unit="ms", tz="UTC"), exit_price=price,
                       exit_reason=reason, gross_pnl=gross, fees=t.entry_fee + exit_fee, funding=funding, pnl=pnl,
                       entry_bar=t.entry_bar, exit_bar=exit_bar, leverage=lev,
                       margin=initial_margin(t.qty, t.entry_price, lev), stop_loss=t.stop_loss,
                       take_profit=t.take_profit, liquidation_price=t.liquidation_price, entry_fee=t.entry_fee,
                       exit_fee=exit_fee)
            self.ledger.record_run_bulk(self.run_id, trades=pd.DataFrame([row]), derive_orders=False)  # real orders are recorded
            self.ex.record_position(0, 0.0)
        publish(self.events, ExitEvent(t.trade_no, side_label(t.side), t.qty, t.entry_price, price, reason, pnl,
                                       t.entry_fee + exit_fee, funding, **self.market_info))
        log.info("trade", trade_id=t.trade_no, side=t.side, qty=t.qty, entry=t.entry_price, exit=price, reason=reason,
                 pnl=round(pnl, 6), funding=funding)

    async def _exit_reason(self, t: OpenTrade, exits: list, price: float) -> str:
        if t.exit_cid is not None:
            row, order = self.ex.unsettled.get(t.exit_cid), await self.ex.lookup(t.exit_cid)
            if row is not None and isinstance(order, dict):
                self.ex.settle(row, order)
            if isinstance(order, dict) and any(f.get("order") == order.get("id") for f in exits):
                return t.exit_reason
        for f in exits[-1:]:
            try:
                why = venue_params.exit_reason(self.ex.venue_id, await self.ex.exit_order(f["order"]))
                if why is not None:
                    return why
            except Exception as exc:
                log.warning("exit_order_unknown", error=describe_error(exc))
        if math.isfinite(t.take_profit) and t.side * (price - t.take_profit) >= 0:
            return ExitReason.TAKE_PROFIT.label
        return (ExitReason.STOP_LOSS.label if math.isfinite(t.stop_loss) and t.side * (price - t.stop_loss) <= 0
                else "unknown")

    def _settle_protection(self, t: OpenTrade, reason: str) -> None:
        """The trade's TP/SL orders in the ledger: the one that closed it ``triggered``, the rest ``canceled``."""
        for r in [r for r in self.ex.unsettled.values() if r.plan and r.trade_no == t.trade_no]:
            self.ex.set_status(r.client_order_id, "triggered" if r.reason == reason else "canceled")

    # ------------------------------------------------------------------ records
    def _snapshot(self, pos, trade: OpenTrade | None = None) -> None:
        t = trade or self.trade
        self.ex.record_position(pos.side, pos.qty, entry_price=pos.entry_price, mark_price=pos.mark_price,
                                liquidation_price=pos.liquidation_price, margin=pos.margin,
                                unrealized_pnl=pos.unrealized_pnl, stop_loss=None if t is None else t.stop_loss,
                                take_profit=None if t is None else t.take_profit)

    def _record(self, candle, bar: int, snap, rows: list, signal: int, proba) -> None:
        if self.ledger is None:
            return
        when = candle.time + pd.Timedelta(milliseconds=self.tf_ms)
        b = self._buf
        b["risk"] += [{"time": when, "bar": bar, "event": e, "value": v, "detail": d} for e, v, d in rows]
        pos = 0.0 if self.trade is None else self.trade.side * self.trade.qty
        b["equity"].append({"time": when, "equity": snap.equity, "position_qty": pos})
        if proba is not None and signal != 0:
            self._open_calls += 1
            b["pred"].append(dict(time=candle.time, bar=bar, p_down=proba[0], p_flat=proba[1], p_up=proba[2],
                                  confidence=max(proba[0], proba[2]), signal=signal,
                                  decision="buy" if signal > 0 else "sell", model_version=self.bundle.version,
                                  features_hash=self.bundle.features_hash))
        if len(b["equity"]) >= self.flush_every or len(b["risk"]) > len(b["equity"]):
            self.flush()

    def flush(self) -> None:
        """Write the buffered cycle rows (equity, cycle latency, risk events, predictions) in one
        transaction: every ``flush_every`` cycles, and at once after a cycle with a risk event, an
        order or a closed trade."""
        b = self._buf
        if self.ledger is None or not b["equity"]:
            return
        frames = {k: pd.DataFrame(v) if v else None for k, v in b.items()}
        self.ledger.record_run_bulk(self.run_id, equity=frames["equity"], risk_events=frames["risk"],
                                    predictions=frames["pred"])
        for v in b.values():
            v.clear()
        self.settle_outcomes()

    def settle_outcomes(self) -> int:
        """Write the realised triple-barrier label of this run's recorded calls whose horizon has
        passed inside the bot's candle window (:func:`perpbot.ml.outcomes.settle_predictions`), so
        ``perpbot status``, the dashboard and the daily summary can set live precision beside the
        model's out-of-sample figures. Returns how many were labelled; a failure is logged, never
        raised (it must not stop trading)."""
        if self.ledger is None or self.bundle is None or self._open_calls <= 0:
            return 0
        from perpbot.ml.outcomes import settle_predictions

        try:
            window = pd.DataFrame(list(self.signals.window), columns=self.signals.COLUMNS)
            n = settle_predictions(self.ledger, self.run_id, window, self.bundle.label_settings,
                                   self.settings.atr_period)
        except Exception as exc:  # noqa: BLE001 - bookkeeping only
            log.error("settle_outcomes_failed", error=describe_error(exc))
            return 0
        self._open_calls = max(0, self._open_calls - n)
        return n

    @property
    def market_info(self) -> dict:
        """{symbol, tick_size, lot_size} of the traded market (the venue's rules once started): what the
        entry and exit events carry so that notifications format this symbol's prices and quantities."""
        rules = self.ex.rules
        return {"symbol": self.settings.symbol, "tick_size": getattr(rules, "tick", None),
                "lot_size": getattr(rules, "lot", None)}

    def _position_status(self) -> dict | None:
        """The open trade as the operator status shows it (side +1/-1, qty base, prices USDT), or None."""
        t = self.trade
        return None if t is None else {"side": t.side, "qty": t.qty, "entry_price": t.entry_price,
                                       "stop_loss": t.stop_loss, "take_profit": t.take_profit,
                                       "liquidation_price": t.liquidation_price, "margin": t.margin}

    def _publish(self, candle, signal: int, proba, snap, latency: float, rec: str) -> None:
        last = last_signal(signal, candle.time, proba)
        t, pos = self.trade, self._position_status()
        publish_cycle(self.events, self.ex.bar_of(candle.timestamp), candle.time, snap.equity,
                      0.0 if t is None else t.side * t.qty, last)
        lat = np.fromiter(self.latency_ms, dtype=np.float64)
        cycle_status(self.control, position=pos, equity=snap.equity, last=last, candle_time=candle.time,
                     cycles=self.cycles, reconcile=rec, latency_ms=round(latency, 3),
                     latency_p50_ms=float(np.percentile(lat, 50)), latency_p99_ms=float(np.percentile(lat, 99)))

