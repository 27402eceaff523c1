"""A user's trading statistics, from the platform ledger (orders and wallet entries).

* a trade = one of the user's orders whose position was settled (status ``closed``);
* its net result = the PnL booked for it - every fee (entry and exit) - funding (USDT), i.e. the
  sum of the user's ``pnl`` entries minus ``fee`` and ``funding`` entries with that order's
  client order id;
* total profit = the sum of the net results; best trade = the largest; win rate = the share of
  trades with a net result > 0 (a fraction, None without trades);
* days active = the number of distinct UTC calendar days on which the user had any wallet
  movement or placed an order.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from perpbot.platform.db import MONEY_CONTEXT
from perpbot.platform.ledger_models import PlatformOrder, WalletEntry

ZERO = Decimal(0)


def user_stats(engine: sa.Engine, user_id: int, currency: str = "USDT") -> dict[str, Any]:
    """``{total_trades, total_profit, best_trade, win_rate, days_active, currency}``; money as Decimal
    (USDT), ``best_trade``/``win_rate`` None when there are no trades."""
    with Session(engine) as s:
        closed = s.execute(sa.select(PlatformOrder.client_order_id).where(
            PlatformOrder.user_id == user_id, PlatformOrder.status == "closed",
            PlatformOrder.currency == currency)).scalars().all()
        entries = s.execute(sa.select(WalletEntry.kind, WalletEntry.amount, WalletEntry.order_ref,
                                      WalletEntry.created_at).where(WalletEntry.user_id == user_id)).all()
        order_times = s.execute(sa.select(PlatformOrder.created_at).where(PlatformOrder.user_id == user_id)).scalars().all()
    net = {coid: ZERO for coid in closed}
    sign = {"pnl": 1, "fee": -1, "funding": -1}
    with localcontext(MONEY_CONTEXT):
        for kind, amount, ref, _t in entries:
            if ref in net and kind in sign:
                net[ref] += sign[kind] * amount
        results = list(net.values())
        total = sum(results, ZERO)
    days = {t.date() for *_x, t in entries} | {t.date() for t in order_times}
    return {"currency": currency, "total_trades": len(results), "total_profit": total,
            "best_trade": max(results) if results else None,
            "win_rate": (sum(1 for r in results if r > 0) / len(results)) if results else None,
            "days_active": len(days)}
