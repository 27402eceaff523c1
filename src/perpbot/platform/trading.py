"""The platform's order flow for one user: check -> lock margin -> send -> record the fill ->
settle, and the reconciliation of a crash in between.

1. :meth:`TradeDesk.open_order` — the user's risk profile (leverage cap, margin <= cap x
   available), the oracle guard (venue price vs the median of independent sources; a veto is
   recorded), the TradePolicy contract (``validate`` call; its revert reason refuses the order),
   then ONE transaction: the order row (status ``locked``), the ``lock`` wallet entry of its
   margin (idempotency key ``lock:<client_order_id>``) and their hash-chain links. A refused
   order is stored too (status ``refused``, the reason) and locks nothing.
2. :meth:`TradeDesk.send` — status ``sending`` is committed BEFORE the venue is called; then the
   sender's fill is stored with its chain link and its fee booked; the fill's link hash is then
   recorded on the contract with its seq, which anchors the chain up to that link. No fill: the margin is released.
3. :meth:`TradeDesk.settle` — on close: release the margin, book PnL = side x (exit - entry) x qty,
   the exit fee and funding (USDT; > 0 paid), status ``closed``.

:meth:`TradeDesk.reconcile` runs at start: an order still ``locked`` after ``max_age_s`` was
never handed to the venue (step 2 commits ``sending`` first), so its margin is released; an order
left ``sending`` is looked up at the venue by client order id (``lookup``) and either gets its
fill or its margin back; without a lookup it is reported and left locked.

Units: qty base asset, prices USDT, leverage x, margin = qty x price / leverage (USDT), all Decimal.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from perpbot.platform import chain
from perpbot.platform.contract import PolicyChain, PolicyRefused
from perpbot.platform.db import MONEY_CONTEXT, to_money, utcnow
from perpbot.platform.ledger_models import PlatformFill, PlatformOrder
from perpbot.platform.models import User
from perpbot.platform.oracle import OracleGuard, OracleVerdict
from perpbot.platform.profiles import Profiles
from perpbot.platform.wallet import Wallet, check_currency, ensure_accounts, lock_accounts, post, write_session

ZERO = Decimal(0)


class OrderRefused(Exception):
    """An order was not accepted: ``reason`` (one line), ``source`` profile | oracle | policy | wallet."""

    def __init__(self, reason: str, source: str, order_id: int | None = None,
                 verdict: OracleVerdict | None = None) -> None:
        super().__init__(reason)
        self.reason, self.source, self.order_id, self.verdict = reason, source, order_id, verdict


@dataclass(frozen=True)
class OrderRequest:
    """``side`` buy (long) | sell (short); ``qty`` base asset; ``leverage`` x; ``price`` USDT reference
    (default: the venue price the oracle saw); ``client_order_id`` (default: generated)."""

    symbol: str
    side: str
    qty: Decimal
    leverage: Decimal
    price: Decimal | None = None
    client_order_id: str | None = None


@dataclass(frozen=True)
class FillReport:
    """What the venue executed: ``qty`` base asset at ``price`` USDT, ``fee`` USDT (> 0 paid), ``time`` UTC."""

    qty: Decimal
    price: Decimal
    fee: Decimal
    time: datetime
    venue_fill_id: str | None = None


Sender = Callable[[PlatformOrder], FillReport | None]
Lookup = Callable[[str], FillReport | None]


class TradeDesk:
    """The order flow (module doc) over one platform database.

    Args:
        engine, wallet, profiles: the platform's database, wallet and risk profiles.
        policy: the TradePolicy contract, or None (no on-chain validation/record: single-machine tests).
        oracle: the oracle guard, or None (an explicit ``price`` is then required and used as the median).
        currency: margin currency (USDT).
    """

    def __init__(self, engine: sa.Engine, wallet: Wallet, profiles: Profiles, *, policy: PolicyChain | None = None,
                 oracle: OracleGuard | None = None, currency: str = "USDT") -> None:
        self.engine, self.wallet, self.profiles = engine, wallet, profiles
        self.policy, self.oracle, self.currency = policy, oracle, check_currency(currency)

    # ------------------------------------------------------------------ 1. open
    def _refuse(self, user_id: int, req: OrderRequest, coid: str, price: Decimal, margin: Decimal, reason: str,
                source: str, verdict: OracleVerdict | None = None) -> OrderRefused:
        with write_session(self.engine) as s:
            row = PlatformOrder(user_id=user_id, client_order_id=coid, symbol=req.symbol, side=req.side, qty=req.qty,
                                price=price, leverage=req.leverage, margin=margin, currency=self.currency,
                                status="refused", reason=f"{source}: {reason}"[:2000])
            s.add(row)
            s.flush()
            chain.append(s, "platform_orders", row)
        return OrderRefused(reason, source, row.id, verdict)

    def open_order(self, user_id: int, req: OrderRequest) -> PlatformOrder:
        """Check and lock margin for ``req`` (module doc, step 1); returns the ``locked`` order.

        Raises:
            OrderRefused: the profile, the oracle or the policy said no (stored as a ``refused`` order),
                or the available balance no longer covers the margin (nothing stored).
            ValueError: a malformed request (side, qty, leverage, client order id).
        """
        if req.side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {req.side!r}")
        qty, leverage = to_money(req.qty), to_money(req.leverage)
        if qty <= ZERO or leverage < 1:
            raise ValueError("qty must be > 0 and leverage >= 1")
        coid = req.client_order_id or f"pf-{secrets.token_hex(10)}"
        if not 1 <= len(coid) <= 64:
            raise ValueError("client_order_id must be 1-64 characters")
        req = OrderRequest(req.symbol, req.side, qty, leverage, req.price, coid)
        with Session(self.engine) as s:
            user = s.get(User, user_id)
            if user is None:
                raise ValueError(f"user {user_id} not found")
            profile = self.profiles.get(user.risk_profile)
        verdict = None
        if self.oracle is not None:
            verdict = self.oracle.check(req.symbol, user_id=user_id)
        if req.price is not None:
            price = to_money(req.price)
        elif verdict is not None and verdict.venue_price is not None:
            price = to_money(str(verdict.venue_price))
        else:
            raise ValueError("no price: give one or configure the oracle guard")
        with localcontext(MONEY_CONTEXT):
            margin = to_money(qty * price / leverage)
        if verdict is not None and not verdict.passed:
            raise self._refuse(user_id, req, coid, price, margin, "; ".join(verdict.reasons), "oracle", verdict)
        if leverage > Decimal(str(profile.max_leverage)):
            raise self._refuse(user_id, req, coid, price, margin, f"leverage {leverage.normalize()}x above the "
                               f"{profile.name} profile's {profile.max_leverage:g}x", "profile")
        available = self.wallet.balances(user_id).get(self.currency, {}).get("available", ZERO)
        with localcontext(MONEY_CONTEXT):
            cap = to_money(available * Decimal(str(profile.max_position_frac)))
        if margin > cap:
            raise self._refuse(user_id, req, coid, price, margin, f"margin {margin.normalize()} {self.currency} above the "
                               f"{profile.name} profile's {profile.max_position_frac:.0%} of available "
                               f"({cap.normalize()} {self.currency})", "profile")
        if self.policy is not None:
            median = to_money(str(verdict.median)) if verdict is not None and verdict.median is not None else price
            try:
                self.policy.validate(user_id, req.symbol, qty, price, leverage, median)
            except PolicyRefused as exc:
                raise self._refuse(user_id, req, coid, price, margin, exc.reason, "policy") from None
        ensure_accounts(self.engine, user_id, self.currency)
        with write_session(self.engine) as s:
            acc = lock_accounts(s, user_id, self.currency)
            if margin > acc["available"].balance:
                raise OrderRefused(f"margin {margin.normalize()} {self.currency} above the available balance", "wallet")
            order = PlatformOrder(user_id=user_id, client_order_id=coid, symbol=req.symbol, side=req.side, qty=qty,
                                  price=price, leverage=leverage, margin=margin, currency=self.currency, status="locked")
            s.add(order)
            s.flush()
            chain.append(s, "platform_orders", order)
            post(s, acc, user_id, "lock", self.currency, margin, f"lock:{coid}", order_ref=coid)
        return order

    # ------------------------------------------------------------------ 2. send
    def _set_status(self, s: Session, order_id: int, status: str, reason: str | None = None) -> PlatformOrder:
        o = s.get(PlatformOrder, order_id, with_for_update=True)
        o.status, o.updated_at = status, utcnow()
        if reason is not None:
            o.reason = reason
        return o

    def send(self, order_id: int, sender: Sender) -> PlatformFill | None:
        """Send a ``locked`` order through ``sender`` (module doc, step 2); the fill, or None (margin released).

        Raises:
            ValueError: the order is not ``locked``. Exceptions of ``sender`` propagate with the order
            left ``sending`` for :meth:`reconcile` (the venue may or may not have it).
        """
        with write_session(self.engine) as s:
            o = s.get(PlatformOrder, order_id, with_for_update=True)
            if o is None or o.status != "locked":
                raise ValueError(f"order {order_id} is not waiting to be sent ({o.status if o else 'unknown'})")
            o.status, o.updated_at = "sending", utcnow()
        fill = sender(o)
        return self._apply(o, fill)

    def _apply(self, o: PlatformOrder, fill: FillReport | None) -> PlatformFill | None:
        if fill is None:
            self._release(o, "venue did not fill the order")
            return None
        with write_session(self.engine) as s:
            self._set_status(s, o.id, "filled")
            row = PlatformFill(order_id=o.id, time=fill.time, qty=to_money(fill.qty), price=to_money(fill.price),
                               fee=to_money(fill.fee), venue_fill_id=fill.venue_fill_id)
            s.add(row)
            s.flush()
            link = chain.append(s, "platform_fills", row)
            if row.fee != ZERO:
                post(s, lock_accounts(s, o.user_id, o.currency), o.user_id, "fee", o.currency, row.fee,
                     f"fee:{o.client_order_id}:entry", order_ref=o.client_order_id)
        if self.policy is not None:  # the fill's link is the head anchored on chain (its hash, its seq)
            self.policy.record_fill(link.hash, link.seq, link.hash)
        return row

    def _release(self, o: PlatformOrder, reason: str) -> None:
        with write_session(self.engine) as s:
            acc = lock_accounts(s, o.user_id, o.currency)
            post(s, acc, o.user_id, "release", o.currency, o.margin, f"release:{o.client_order_id}",
                 order_ref=o.client_order_id)
            self._set_status(s, o.id, "released", reason)

    # ------------------------------------------------------------------ 3. settle
    def settle(self, order_id: int, exit_price: Any, *, fee: Any = 0, funding: Any = 0) -> Decimal:
        """Close a ``filled`` order's position at ``exit_price`` (module doc, step 3); returns the net PnL
        (gross - exit fee - funding, USDT). Raises ValueError when the order is not filled."""
        with Session(self.engine) as s:
            o = s.get(PlatformOrder, order_id)
            fills = s.execute(sa.select(PlatformFill).where(PlatformFill.order_id == order_id)).scalars().all()
        if o is None or o.status != "filled" or not fills:
            raise ValueError(f"order {order_id} has no open position to settle")
        with localcontext(MONEY_CONTEXT):
            qty = sum((f.qty for f in fills), ZERO)
            entry = to_money(sum((f.qty * f.price for f in fills), ZERO) / qty)
            sign = 1 if o.side == "buy" else -1
            gross = to_money(sign * (to_money(exit_price) - entry) * qty)
            fee, funding = to_money(fee), to_money(funding)
            net = gross - fee - funding
        self.wallet.settle(o.user_id, o.currency, f"settle:{o.client_order_id}", order_ref=o.client_order_id,
                           margin=o.margin, pnl=gross, fee=fee, funding=funding)
        with write_session(self.engine) as s:
            self._set_status(s, o.id, "closed")
        return net

    # ------------------------------------------------------------------ reconcile
    def reconcile(self, max_age_s: float = 60.0, lookup: Lookup | None = None) -> list[dict[str, Any]]:
        """Repair what a crash between the steps left (module doc); returns one dict per order acted on
        or left: ``{order_id, client_order_id, status_before, action}``."""
        cutoff = utcnow() - timedelta(seconds=max_age_s)
        with Session(self.engine) as s:
            stuck = s.execute(sa.select(PlatformOrder).where(PlatformOrder.status.in_(("locked", "sending")))
                              .order_by(PlatformOrder.id)).scalars().all()
        done = []
        for o in stuck:
            action = None
            if o.status == "locked" and o.updated_at <= cutoff:
                self._release(o, "reconciled: margin locked but the order was never sent")
                action = "released"
            elif o.status == "sending" and lookup is not None:
                fill = lookup(o.client_order_id)
                self._apply(o, fill)
                action = "filled" if fill is not None else "released"
            elif o.status == "sending":
                action = "left: needs a venue lookup"
            if action is not None:
                done.append({"order_id": o.id, "client_order_id": o.client_order_id, "status_before": o.status,
                             "action": action})
        return done
