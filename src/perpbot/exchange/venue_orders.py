"""The order calls of a venue module, made through its ccxt client (one code path for every venue).

A venue module (:mod:`perpbot.exchange.binance`, ``bybit``, ``okx``, ``mexc``, ``weex``; Bitget
keeps its calls in the executor; the spot venues' calls are in :mod:`perpbot.exchange.spot_orders`)
says *how* each step is expressed as ccxt calls; these coroutines make them:

* :func:`setup_isolated`: isolated margin and the leverage on one symbol;
* :func:`place_entry`: a market entry with its stop-loss / take-profit (attached to the entry
  where the venue offers it, else separate reduce-only trigger orders right after it);
* :func:`place_exit`: a reduce-only market exit;
* :func:`lookup_order`: the order with a client order id (the look-up before any resend);
* :func:`cancel` and :func:`fetch_position`.

``side`` is "buy" (long entry) or "sell" (short entry); ``qty`` is in ccxt's amount unit of
the market (base asset on Binance, Bybit and WEEX; contracts on OKX and MEXC: see
:func:`contracts`); prices in USDT; ``cid`` is perpbot's client order id (``pb{run}-{bar}-{n}``),
turned into the venue's form by ``venue.client_order_id``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OrderCall:
    """One ``create_order(symbol, type, side, amount, price, params)`` call."""

    type: str
    side: str
    amount: float
    price: float | None = None
    params: dict[str, Any] = field(default_factory=dict)


def contracts(market: dict, qty_base: float) -> float:
    """``qty_base`` (base asset) in the market's amount unit: base / ``contractSize`` (1 when absent)."""
    size = float(market.get("contractSize") or 1.0)
    return qty_base / size


def closing_side(side: str) -> str:
    """The side that closes a ``side`` position ("buy" -> "sell")."""
    return "sell" if side == "buy" else "buy"


def protected(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


async def setup_isolated(ex, venue, symbol: str, leverage: int, margin: bool = True) -> list:
    """Isolated margin (unless ``margin`` is False: a position is open), then ``leverage`` on
    ``symbol``; the venue's responses in order. A venue's "nothing to change" answer (ccxt
    ``NoChange``, or a code in ``venue.NO_CHANGE_CODES``) counts as done (None in the list)."""
    import ccxt

    async def call(coro):
        try:
            return await coro
        except ccxt.NoChange:
            return None
        except ccxt.ExchangeError as exc:
            if any(code in str(exc) for code in getattr(venue, "NO_CHANGE_CODES", ())):
                return None
            raise

    out = []
    mm = venue.margin_mode_params(leverage)
    if mm is not None and margin:
        out.append(await call(ex.set_margin_mode("isolated", symbol, mm)))
    for params in venue.leverage_params(leverage):
        out.append(await call(ex.set_leverage(leverage, symbol, params)))
    return out


def entry_calls(venue, side: str, qty: float, cid: str, stop_loss: float | None, take_profit: float | None,
                leverage: int) -> list[OrderCall]:
    """The create-order calls of an entry: the market entry, then (venues without TP/SL at
    entry) the reduce-only stop-loss and take-profit trigger orders."""
    sl = stop_loss if protected(stop_loss) else None
    tp = take_profit if protected(take_profit) else None
    if venue.CAPABILITIES.preset_tpsl_at_entry:
        return [OrderCall("market", side, qty, None, venue.entry_params(cid, sl, tp, leverage))]
    calls = [OrderCall("market", side, qty, None, venue.entry_params(cid, None, None, leverage))]
    return calls + venue.protection_calls(closing_side(side), qty, cid, sl, tp, leverage)


async def place_entry(ex, venue, symbol: str, side: str, qty: float, *, cid: str, stop_loss: float | None,
                      take_profit: float | None, leverage: int) -> list[dict]:
    """Send :func:`entry_calls` in order; the ccxt orders (entry first)."""
    return [await ex.create_order(symbol, c.type, c.side, c.amount, c.price, dict(c.params))
            for c in entry_calls(venue, side, qty, cid, stop_loss, take_profit, leverage)]


async def place_exit(ex, venue, symbol: str, position_side: str, qty: float, *, cid: str, leverage: int) -> dict:
    """Reduce-only market order closing ``qty`` of a ``position_side`` ("buy" = long) position."""
    return await ex.create_order(symbol, "market", closing_side(position_side), qty, None,
                                 venue.exit_params(cid, leverage))


async def lookup_order(ex, venue, symbol: str, cid: str) -> dict:
    """The venue's order with client id ``cid`` (ccxt order). Raises ``ccxt.OrderNotFound``."""
    return await venue.lookup(ex, symbol, venue.client_order_id(cid))


async def cancel(ex, venue, symbol: str, order_id: str, trigger: bool = False) -> dict:
    """Cancel one order (``trigger``: a stop-loss / take-profit trigger order)."""
    return await ex.cancel_order(order_id, symbol, venue.cancel_params(trigger))


async def fetch_position(ex, symbol: str) -> dict | None:
    """The open position on ``symbol`` (ccxt position), or None when flat."""
    rows = await ex.fetch_positions([symbol])
    return next((p for p in rows if p.get("symbol") == symbol and float(p.get("contracts") or 0) > 0), None)
