"""The venue-side protection of the position: stop-loss, take-profit and trailing stop orders, listed,
placed, replaced and cancelled (a part of :class:`~perpbot.exchange.executor.Executor`, mixed in).

What each venue calls these orders and how they are sent is in its module, through
:mod:`perpbot.exchange.venue_params`: Bitget's position-wide plan orders (``pos_loss`` / ``pos_profit``,
``moving_plan``; place-tpsl-order), Binance USDⓈ-M's reduce-only conditional (algo) orders
(``STOP_MARKET`` / ``TAKE_PROFIT_MARKET`` / ``TRAILING_STOP_MARKET``; ``POST /fapi/v1/algoOrder``), OKX's
TP/SL algo orders (the entry's ``oco``, perpbot's reduce-only ``conditional`` ones; ``POST /api/v5/trade/order-algo``;
client ids in the venue's form: :func:`~perpbot.exchange.venue_params.client_id`).
Every order gets a client order id and a ledger row before it is sent, as the entries do.
Units: qty base asset, prices USDT, ``rate`` a fraction.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from perpbot.exchange import venue_params
from perpbot.exchange.ccxt_adapter import describe_error
from perpbot.logs import get_logger

log = get_logger("perpbot.live")

if TYPE_CHECKING:
    from perpbot.exchange.executor import OrderResult


class VenueProtection:
    """Protection orders of ``self.symbol`` on ``self.ex`` (uses the executor's ``_record``,
    ``_submit``, ``_settle``, ``_synced``, ``round_qty`` / ``round_price``)."""

    ex: Any
    symbol: str
    market: dict | None

    if TYPE_CHECKING:  # the executor's methods this mixin calls
        async def _synced(self, call: Callable[[], Awaitable[Any]]) -> Any: ...
        async def _submit(self, cid: str, call: Callable[[], Awaitable[dict]], path: str, what: str,
                          plan: bool = False) -> OrderResult: ...
        def _settle(self, res: OrderResult, bar: int | None) -> OrderResult: ...
        def _record(self, bar: int, side: str, otype: str, qty: float, price: float | None, reduce_only: bool,
                    reason: str, trade_no: int | None) -> str: ...
        def round_qty(self, qty: float) -> float: ...
        def round_price(self, price: float) -> float: ...

    def kind_of(self, order: dict) -> str | None:
        """"stop_loss" | "take_profit" | "trailing_stop" of a protection order (ccxt order), else None (also on a
        venue the live bot does not trade: :data:`~perpbot.exchange.venue_params.LIVE_VENUES`)."""
        return venue_params.protection_kind(self.ex.id, order) if self.ex.id in venue_params.LIVE_VENUES else None

    async def protect(self, side: int, qty: float, *, stop_loss: float | None, take_profit: float | None,
                      bar: int, trade_no: int | None = None) -> list[OrderResult]:
        """Place stop-loss / take-profit orders for the open ``side`` position (``qty`` base); a new
        one replaces an older one of its kind, which stays in force until the new one is accepted
        (the position is never without its stop)."""
        out, placed = [], {}
        close_side = "sell" if side > 0 else "buy"
        for kind, level, otype in (("stop_loss", stop_loss, "stop"), ("take_profit", take_profit, "take_profit")):
            if level is None or not math.isfinite(level):
                continue
            price = self.round_price(level)
            cid = self._record(bar, close_side, otype, qty, price, True, kind, trade_no)
            params = venue_params.protection_params(self.ex.id, kind, cid, price)
            async def call(p: dict = params) -> dict:
                return await self.ex.create_order(self.symbol, "market", close_side, self.round_qty(qty), None, dict(p))
            res = await self._submit(cid, call, "place-tpsl-order", kind, plan=True)
            out.append(self._settle(res, bar))
            if res.ok:
                placed[kind] = res.exchange_id
        if placed:
            await self._cancel_older(placed, close_side)
        return out

    async def _cancel_older(self, placed: dict[str, str | None], close_side: str) -> None:
        """Cancel the protection orders of each kind in ``placed`` (kind -> the new order's id) but the new one
        (one listing for both kinds)."""
        for p in await self.protection_orders():
            kind = self.kind_of(p)
            if kind in placed and p.get("id") != placed[kind] and p.get("side") in (None, close_side):
                await self.cancel(p, plan=True)

    async def trailing_stop(self, side: int, qty: float, activation: float, rate: float, *, bar: int,
                            trade_no: int | None = None) -> OrderResult:
        """Venue-side trailing stop of the ``side`` position: active once the price reaches ``activation``
        (USDT), then trails ``rate`` (fraction, e.g. 0.005) behind the best price."""
        from perpbot.exchange.executor import OrderResult

        if self.ex.id not in venue_params.TRAILING_VENUES:
            log.warning("trailing_stop_unsupported", exchange=self.ex.id)
            return OrderResult("", "skipped", error=f"perpbot places trailing stops on "
                                                    f"{', '.join(venue_params.TRAILING_VENUES)}, not {self.ex.id}")
        qty = self.round_qty(qty)
        price = self.round_price(activation)
        cid = self._record(bar, "sell" if side > 0 else "buy", "stop", qty, price, True, "trailing_stop", trade_no)
        async def call() -> dict:
            return await venue_params.place_trailing(self.ex, self.symbol, self.market or {}, side, qty, price, rate, cid)
        return self._settle(await self._submit(cid, call, "place-tpsl-order", "trailing stop", plan=True), bar)

    async def cancel(self, order: dict, plan: bool = False) -> bool:
        """Cancel one open order (``plan``: a protection order); False (logged) when it failed.
        Its ledger row is settled later from the venue's state (:meth:`settle`)."""
        import ccxt

        params = venue_params.cancel_protection_params(self.ex.id, order) if plan else {}
        try:
            await self._synced(lambda: self.ex.cancel_order(order["id"], self.symbol, params))
        except ccxt.OrderNotFound:
            return True  # already gone
        except ccxt.BaseError as exc:
            log.error("cancel_failed", order_id=order.get("id"), error=describe_error(exc))
            return False
        return True  # the ledger learns it when the order is settled (reconcile / the loop)

    async def open_orders(self) -> tuple[list[dict], list[dict]]:
        """(open normal orders, open protection orders) of the symbol (clock re-synced once on a
        refused timestamp)."""
        if self.ex.id not in venue_params.LIVE_VENUES:  # e.g. ``perpbot status`` on MEXC: its stops are not read
            return await self._synced(lambda: self.ex.fetch_open_orders(self.symbol)), []
        normal, plans = await self._synced(lambda: asyncio.gather(self.ex.fetch_open_orders(self.symbol),
                                                                  self._fetch_protection()))
        return normal, plans

    async def protection_orders(self) -> list[dict]:
        """The open protection orders of the symbol (ccxt orders; none read on a venue outside ``LIVE_VENUES``)."""
        if self.ex.id not in venue_params.LIVE_VENUES:
            return []
        return await self._synced(self._fetch_protection)

    def _fetch_protection(self) -> Awaitable[list[dict]]:
        return self.ex.fetch_open_orders(self.symbol, params=venue_params.protection_query(self.ex.id))
