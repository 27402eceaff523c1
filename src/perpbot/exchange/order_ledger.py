"""The executor's ledger side: order rows written before sending, their statuses and fills,
position snapshots and risk events.

:class:`OrderLedger` is mixed into :class:`~perpbot.exchange.executor.Executor` (it uses the
executor's ``ledger``, ``run_id``, ``unsettled``, ``ledger_position``, :meth:`new_cid` and
:meth:`now`). Ledger order statuses: new (recorded, not confirmed), open (accepted), filled,
partially_filled (cancelled after a partial fill), canceled, failed (never reached the venue or
refused), triggered (a TP/SL that closed the position). Units: qty base asset, prices USDT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass
class OrderRow:
    """A ledger order not yet settled (status new / open), as the executor tracks it."""

    id: int | None
    run_id: int | None
    client_order_id: str
    side: str
    type: str
    status: str
    reason: str | None = None
    trade_no: int | None = None

    @property
    def plan(self) -> bool:
        """A TP/SL (plan) order rather than a market / limit order."""
        return self.type in ("stop", "take_profit")


class OrderLedger:
    """Ledger rows of the executor's orders (see the module docstring)."""

    def _record(self, bar: int, side: str, otype: str, qty: float, price: float | None, reduce_only: bool,
                reason: str, trade_no: int | None) -> str:
        from perpbot.storage.ledger import LedgerConflictError

        while True:
            cid = self.new_cid(bar)
            oid = None
            if self.ledger is not None:
                try:
                    oid = self.ledger.record_order(self.run_id, client_order_id=cid, time=self.now(), side=side,
                                                   type=otype, qty=qty, price=price, reduce_only=reduce_only,
                                                   status="new", reason=reason, trade_no=trade_no)
                except LedgerConflictError:  # used by an earlier process in the same bar: take the next
                    continue
            self.unsettled[cid] = OrderRow(oid, self.run_id, cid, side, otype, "new", reason, trade_no)
            return cid

    def set_status(self, cid: str, status: str, exchange_id: str | None = None) -> None:
        """Set a ledger order's status (and exchange id); settled orders leave :attr:`unsettled`."""
        if self.ledger is not None:
            self.ledger.update_order(cid, status=status, exchange_order_id=exchange_id)
        row = self.unsettled.get(cid)
        if row is not None:
            if status in ("new", "open"):
                row.status = status
            else:
                del self.unsettled[cid]

    def settle(self, row: OrderRow, order: dict | None) -> str:
        """Settle a ledger order from the venue's ccxt ``order`` (None: the venue does not have
        it): filled / partially_filled (cancelled after a partial fill) / canceled / failed
        (a new order the venue never got) / open; records its fill once (qty filled, average
        price, fee, at the last trade time). Returns the new status."""
        if order is None:
            new = "failed" if row.status == "new" else "canceled"
        else:
            filled = float(order.get("filled") or 0.0)
            st = order.get("status")
            if st == "closed":
                new = "filled"
            elif st in ("canceled", "rejected", "expired"):
                new = "partially_filled" if filled > 0 else ("canceled" if st == "canceled" else "failed")
            else:
                new = "open"
            if new in ("filled", "partially_filled") and filled > 0 and row.status in ("new", "open") \
                    and self.ledger is not None and row.id is not None:
                fee = (order.get("fee") or {}).get("cost") or 0.0
                ts = order.get("lastTradeTimestamp") or order.get("timestamp")
                when = pd.Timestamp(ts, unit="ms", tz="UTC") if ts else self.now()
                self.ledger.record_fill(row.run_id, int(row.id), when, row.side, filled,
                                        float(order.get("average") or order["price"]), fee=abs(float(fee)),
                                        liquidity="taker")
        if new != row.status or (order is not None and row.status == "new"):
            self.set_status(row.client_order_id, new, None if order is None else order.get("id"))
        return new

    def record_position(self, side: int, qty: float, **fields) -> None:
        """Write a position snapshot (time = :meth:`now`; fields as ``Ledger.record_position``)."""
        self.ledger_position = (int(side), float(qty))
        if self.ledger is not None:
            self.ledger.record_position(self.run_id, time=self.now(), side=int(side), qty=float(qty), **{
                k: (None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v)
                for k, v in fields.items()})

    def risk_event(self, event: str, value: float | None = None, detail: str | None = None,
                   bar: int | None = None) -> None:
        """Write one risk-event row (time = now UTC)."""
        if self.ledger is not None:
            self.ledger.record_risk_events(self.run_id, pd.DataFrame([{
                "time": self.now(), "bar": bar, "event": event, "value": value, "detail": detail}]))
