"""Why MEXC is not a live venue: the real ccxt 4.5 ``mexc`` client cannot list, cancel or identify the
stop-loss / take-profit that protects a MEXC position (recording stub on 127.0.0.1, no network).

MEXC contract API v1 (futures docs: "Get Current Take-Profit/Stop-Loss Order List",
``GET /api/v1/private/stoporder/open_orders``; "Cancel the Stop-Limit trigger order",
``POST /api/v1/private/stoporder/cancel`` with ``[{"stopPlanOrderId": id}]``): the ``stopLossPrice`` /
``takeProfitPrice`` of an entry become ONE TP/SL order of the position (both prices in one row: ``id``,
``orderId`` = the entry's id, ``triggerSide`` 1 take-profit / 2 stop-loss once fired, ``placeOrderId`` = the
closing order), with no client id. ccxt reaches none of it through the calls perpbot's venue seam is made
of (``fetch_open_orders`` / ``cancel_order`` params, the parsed ccxt order). These tests pin that, so they
fail (and MEXC can be reconsidered) the day ccxt changes.
"""

from __future__ import annotations

import asyncio

import ccxt.async_support as ccxt
import pytest

from _venue_payloads import MEXC_CONTRACT, mexc_ok
from _venue_stub import VenueStub, point_at

SYM = "SOL/USDT:USDT"
#: a row of GET /api/v1/private/stoporder/open_orders (MEXC's response example, SOL_USDT)
TPSL_ROW = {"id": 357859177, "orderId": "720733527158642176", "symbol": "SOL_USDT", "positionId": "1027177055",
            "lossTrend": 1, "profitTrend": 1, "stopLossPrice": 140.0, "takeProfitPrice": 160.0, "state": 1,
            "triggerSide": 0, "positionType": 1, "vol": 2, "realityVol": 0, "placeOrderId": 0, "errorCode": 0,
            "version": 1, "isFinished": 0, "createTime": 1757506663000, "updateTime": 1757506663000}
#: a row of GET /api/v1/private/planorder/list/orders (trigger order; ``orderId`` 0 until it executes)
PLAN_ROW = {"id": "265557643326564352", "symbol": "SOL_USDT", "leverage": 5, "side": 2, "triggerPrice": 160.0,
            "vol": 2, "openType": 1, "triggerType": 1, "state": 1, "executeCycle": 1, "trend": 1, "orderType": 5,
            "orderId": 0, "errorCode": 0, "createTime": 1, "updateTime": 1}
ROUTES = {("GET", "/api/v1/contract/detail"): mexc_ok([MEXC_CONTRACT]),
          ("GET", "/api/v1/private/planorder/list/orders"): mexc_ok([PLAN_ROW]),
          ("POST", "/api/v1/private/planorder/cancel"): {"success": True, "code": 0},
          ("POST", "/api/v1/private/order/create"): mexc_ok({"orderId": "m-9", "ts": 1})}


def _run(body):
    async def go():
        with VenueStub(ROUTES, mexc_ok([])) as stub:
            ex = ccxt.mexc({"apiKey": "k", "secret": "s", "enableRateLimit": False, "timeout": 2000,
                            "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}}})
            point_at(ex, stub.base_url)
            try:
                await ex.load_markets()
                return await body(ex, stub)
            finally:
                await ex.close()
    return asyncio.run(go())


def test_trigger_listing_and_cancel_reach_plan_orders_only_never_the_tpsl_orders():
    async def body(ex, stub):
        listed = await ex.fetch_open_orders(SYM, params={"trigger": True})
        await ex.cancel_order("357859177", SYM, {"trigger": True})
        with pytest.raises(ccxt.NotSupported):
            await ex.cancel_order("357859177", SYM, {"method": "contractPrivatePostStoporderCancel"})
        return listed, [(r.method, r.path) for r in stub.seen if r.path.startswith("/api/v1/private/")]

    listed, seen = _run(body)
    assert seen == [("GET", "/api/v1/private/planorder/list/orders"), ("POST", "/api/v1/private/planorder/cancel")]
    # even a plan order loses its identity: ccxt takes ``orderId`` (0 until executed) before ``id``; no client id;
    # side 2 (close short, a buy) reads "sell"
    assert (listed[0]["id"], listed[0]["clientOrderId"], listed[0]["side"]) == ("0", None, "sell")


def test_a_tpsl_row_parses_to_the_entry_id_with_no_trigger_price():
    async def body(ex, stub):
        return ex.parse_order(TPSL_ROW, ex.market(SYM))

    order = _run(body)
    assert (order["id"], order["triggerPrice"], order["clientOrderId"]) == ("720733527158642176", None, None)
    assert order["side"] is None and order.get("stopLossPrice") is None and order.get("takeProfitPrice") is None


def test_a_stop_loss_param_on_a_reduce_only_order_is_an_immediate_market_close():
    """Bitget's ``protection_params`` shape (``stopLossPrice`` on a reduce-only market order) would close the
    position at once on MEXC: ccxt sends a market order (type 6, side 4 close long) to order/create."""
    async def body(ex, stub):
        await ex.create_order(SYM, "market", "sell", 2, None, {"stopLossPrice": 140.0, "reduceOnly": True,
                                                               "marginMode": "isolated", "leverage": 5})
        return stub.seen[-1]

    r = _run(body)
    assert (r.method, r.path) == ("POST", "/api/v1/private/order/create")
    assert {k: r.json[k] for k in ("type", "side", "stopLossPrice")} == {"type": 6, "side": 4, "stopLossPrice": 140.0}
