"""The exact signed requests Binance USDⓈ-M, Bybit, OKX, MEXC (issue 10, item 5) and WEEX (issue 12,
item 6) receive from perpbot.

Each test drives perpbot's real code path (:class:`perpbot.exchange.executor.Executor` on the
client of :func:`perpbot.exchange.ccxt_adapter.make_exchange`, or
:mod:`perpbot.exchange.venue_orders` where the executor is not wired) with the real, unpatched
ccxt client against a recording stub on 127.0.0.1, and asserts method, path and parameters of
every private request plus its signature, recomputed with the test secret:

* start-up: isolated margin and leverage (while flat); entry with stop-loss / take-profit;
  reduce-only exit; cancel (normal and trigger orders); the position read;
* lookup-before-retry: the venue holds its create-order answer past the client timeout, the
  executor asks for the order by its client id and, finding it, sends nothing again.

Binance attaches no TP/SL to an order: the executor refuses such an entry (nothing sent) and
:func:`perpbot.exchange.venue_orders.place_entry` sends the entry plus two reduce-only trigger orders.
WEEX reads one order by its venue id only: the look-up by client id lists the open orders, then
the order history.
"""

from __future__ import annotations

import asyncio

import pytest

from perpbot.exchange import binance, venue_orders
from perpbot.exchange.executor import Executor, RetryPolicy
from _sim_fixtures import quiet_loggers
from _venue_harness import BINANCE_VOLATILE, KEY_HEADER, signed, venue_client, venue_settings, without
from _venue_payloads import FALLBACK, SYMBOL, routes
from _venue_stub import VenueStub

VENUES = ["binanceusdm", "bybit", "okx", "mexc", "weex"]
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, lookup_attempts=2)
CREATE = {"binanceusdm": ("POST", "/fapi/v1/order"), "bybit": ("POST", "/v5/order/create"),
          "okx": ("POST", "/api/v5/trade/batch-orders"), "mexc": ("POST", "/api/v1/private/order/create"),
          "weex": ("POST", "/capi/v3/order")}
REAL = {"PERPBOT_CONFIRM_REAL_MONEY": "yes"}  # MEXC, WEEX: no (usable) demo, so clients in real-money mode only
REAL_ONLY = ("mexc", "weex")


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.live"):
        yield


def params(venue: str, r) -> dict | list:
    """The request's parameters less per-request fields (Binance form; the others JSON)."""
    if venue == "binanceusdm":
        return without(r.form if r.method == "POST" else r.query, *BINANCE_VOLATILE)
    return r.json if r.method == "POST" else r.query


def private(stub, venue: str, method: str | None = None) -> list:
    """Recorded private requests (a signature header or parameter present), all verified as signed."""
    out = [r for r in stub.seen if KEY_HEADER[venue] in r.headers and "/api/v3/" not in r.path]  # MEXC spot: markets
    assert out and all(signed(venue, r) for r in out), [(r.method, r.path) for r in out]
    if venue == "okx":
        assert all(r.headers.get("x-simulated-trading") == "1" for r in out)  # OKX demo trading
    return [r for r in out if method is None or r.method == method]


async def _executor(venue: str, stub, tmp_path, timeout_ms: int = 2000) -> Executor:
    s = venue_settings(venue, tmp_path)
    ex = venue_client(s, stub, real_money=venue in REAL_ONLY, environ=REAL, timeout_ms=timeout_ms)
    exe = Executor(ex, s, retry=FAST)
    await exe.startup()
    stub.clear()
    return exe


def drive(venue: str, tmp_path, steps, state: dict | None = None, timeout_ms: int = 2000, delays=None):
    """Start an executor on ``venue`` against a fresh stub, run ``await steps(exe, stub)``; (result, stub)."""
    state = {} if state is None else state
    with VenueStub(routes(venue, state), FALLBACK[venue]) as stub:
        async def go():
            exe = await _executor(venue, stub, tmp_path, timeout_ms)
            stub.delays.update(delays or {})
            try:
                return await steps(exe, stub)
            finally:
                await exe.close()
        return asyncio.run(go()), stub


# ---- start-up: isolated margin and leverage ------------------------------------------------------
STARTUP = {
    "binanceusdm": [("/fapi/v1/marginType", {"symbol": "SOLUSDT", "marginType": "ISOLATED"}),
                    ("/fapi/v1/leverage", {"symbol": "SOLUSDT", "leverage": "5"})],
    "bybit": [("/v5/account/set-margin-mode", {"setMarginMode": "ISOLATED_MARGIN"}),
              ("/v5/position/set-leverage", {"symbol": "SOLUSDT", "buyLeverage": "5", "sellLeverage": "5",
                                             "category": "linear"})],
    "okx": [("/api/v5/account/set-leverage", {"lever": 5, "mgnMode": "isolated", "instId": "SOL-USDT-SWAP",
                                              "posSide": "net"})],
    "mexc": [("/api/v1/private/position/change_leverage", {"leverage": 5, "openType": 1, "symbol": "SOL_USDT",
                                                           "positionType": 1}),
             ("/api/v1/private/position/change_leverage", {"leverage": 5, "openType": 1, "symbol": "SOL_USDT",
                                                           "positionType": 2})],
    "weex": [("/capi/v3/account/marginType", {"symbol": "SOLUSDT", "marginType": "ISOLATED",
                                              "separatedType": "COMBINED"}),
             ("/capi/v3/account/leverage", {"symbol": "SOLUSDT", "marginType": "ISOLATED", "isolatedLongLeverage": 5,
                                            "isolatedShortLeverage": 5})],
}


@pytest.mark.parametrize("venue", VENUES)
def test_startup_sets_isolated_margin_then_leverage(venue, tmp_path):
    with VenueStub(routes(venue, {}), FALLBACK[venue]) as stub:
        async def go():
            s = venue_settings(venue, tmp_path)
            exe = Executor(venue_client(s, stub, real_money=venue in REAL_ONLY, environ=REAL), s, retry=FAST)
            try:
                return await exe.startup()
            finally:
                await exe.close()
        rules = asyncio.run(go())
    posts = private(stub, venue, "POST")
    assert [(r.path, params(venue, r)) for r in posts] == STARTUP[venue]  # nothing else is POSTed at start-up
    assert rules.lot > 0 and rules.tick == 0.01


@pytest.mark.parametrize("known", [False, True])
def test_startup_with_an_open_position_sets_only_the_leverage(tmp_path, known):
    """Margin mode cannot change under a position: Binance gets the leverage call only, and none when the
    position's leverage can be read (``GET /fapi/v1/symbolConfig``: it keeps the one it was opened at)."""
    table = routes("binanceusdm", {"open": True})
    if known:
        table[("GET", "/fapi/v1/symbolConfig")] = [{"symbol": "SOLUSDT", "marginType": "ISOLATED",
                                                    "isAutoAddMargin": "false", "leverage": 5,
                                                    "maxNotionalValue": "1000000"}]
    with VenueStub(table, FALLBACK["binanceusdm"]) as stub:
        async def go():
            s = venue_settings("binanceusdm", tmp_path)
            exe = Executor(venue_client(s, stub), s, retry=FAST)
            try:
                await exe.startup()
            finally:
                await exe.close()
        asyncio.run(go())
    posts = [r.path for r in private(stub, "binanceusdm", "POST")]
    assert posts == ([] if known else ["/fapi/v1/leverage"])
    assert ("GET", "/fapi/v1/symbolConfig") in [(r.method, r.path) for r in stub.seen]


# ---- entry with stop-loss / take-profit ----------------------------------------------------------
ENTRY = {
    "bybit": {"symbol": "SOLUSDT", "side": "Buy", "orderType": "Market", "orderLinkId": "pb0-100-0",
              "category": "linear", "qty": "2", "stopLoss": "140", "takeProfit": "160", "slTriggerBy": "MarkPrice",
              "tpTriggerBy": "MarkPrice"},
    "okx": [{"instId": "SOL-USDT-SWAP", "side": "buy", "ordType": "market", "sz": "2", "tdMode": "isolated",
             "attachAlgoOrds": [{"slTriggerPx": "140", "slOrdPx": "-1", "slTriggerPxType": "mark",
                                 "tpTriggerPx": "160", "tpOrdPx": "-1", "tpTriggerPxType": "mark"}],
             "clOrdId": "pb0x100x0"}],
    "mexc": {"symbol": "SOL_USDT", "vol": 2.0, "type": 6, "openType": 1, "side": 1, "externalOid": "pb0-100-0",
             "leverage": 5, "stopLossPrice": 140.0, "takeProfitPrice": 160.0},
    "weex": {"symbol": "SOLUSDT", "side": "BUY", "quantity": "2", "type": "MARKET", "positionSide": "LONG",
             "newClientOrderId": "pb0-100-0", "slTriggerPrice": "140", "SlWorkingType": "MARK_PRICE",
             "tpTriggerPrice": "160", "TpWorkingType": "MARK_PRICE"},
}


@pytest.mark.parametrize("venue", ["bybit", "okx", "mexc", "weex"])
def test_entry_carries_its_stop_loss_and_take_profit(venue, tmp_path):
    res, stub = drive(venue, tmp_path, lambda exe, stub: exe.open_position(
        1, 2.0, 140.0, 160.0, bar=100, ref_price=150.0))
    assert res.ok and res.cid == "pb0-100-0" and res.attempts == 1
    posts = private(stub, venue, "POST")
    assert [(r.method, r.path) for r in posts] == [CREATE[venue]]
    assert params(venue, posts[0]) == ENTRY[venue]


def test_binance_entry_with_tpsl_is_sent_with_its_stops_by_the_executor_and_by_venue_orders(tmp_path):
    """Binance has no TP/SL on the entry: the executor sends the bare market entry, then the stop-loss and
    take-profit as reduce-only conditional (algo) orders; venue_orders.place_entry sends the same three."""
    res, stub = drive("binanceusdm", tmp_path, lambda exe, stub: exe.open_position(
        1, 2.0, 140.0, 160.0, bar=100, ref_price=150.0))
    common = {"symbol": "SOLUSDT", "newOrderRespType": "RESULT", "quantity": "2"}
    algo = {**common, "side": "SELL", "reduceOnly": "true", "workingType": "MARK_PRICE", "algoType": "CONDITIONAL"}
    assert res.ok and [(r.path, params("binanceusdm", r)) for r in private(stub, "binanceusdm", "POST")] == [
        ("/fapi/v1/order", {**common, "side": "BUY", "newClientOrderId": "pb0-100-0", "type": "MARKET"}),
        ("/fapi/v1/algoOrder", {**algo, "clientAlgoId": "pb0-100-1", "type": "STOP_MARKET", "triggerPrice": "140"}),
        ("/fapi/v1/algoOrder", {**algo, "clientAlgoId": "pb0-100-2", "type": "TAKE_PROFIT_MARKET",
                                "triggerPrice": "160"})]

    async def direct(exe, stub):
        return await venue_orders.place_entry(exe.ex, binance, SYMBOL, "buy", 2.0, cid="pb0-100-0",
                                              stop_loss=140.0, take_profit=160.0, leverage=5)
    orders, stub = drive("binanceusdm", tmp_path, direct)
    posts = private(stub, "binanceusdm", "POST")
    common = {"symbol": "SOLUSDT", "newOrderRespType": "RESULT", "quantity": "2"}
    assert [(r.path, params("binanceusdm", r)) for r in posts] == [
        ("/fapi/v1/order", {**common, "side": "BUY", "newClientOrderId": "pb0-100-0", "type": "MARKET"}),
        ("/fapi/v1/algoOrder", {**common, "side": "SELL", "clientAlgoId": "pb0-100-0-sl", "type": "STOP_MARKET",
                                "triggerPrice": "140", "reduceOnly": "true", "workingType": "MARK_PRICE",
                                "algoType": "CONDITIONAL"}),
        ("/fapi/v1/algoOrder", {**common, "side": "SELL", "clientAlgoId": "pb0-100-0-tp",
                                "type": "TAKE_PROFIT_MARKET", "triggerPrice": "160", "reduceOnly": "true",
                                "workingType": "MARK_PRICE", "algoType": "CONDITIONAL"})]
    assert len(orders) == 3


def test_binance_trailing_stop_is_a_reduce_only_trailing_algo_order(tmp_path):
    """The executor's trailing stop on Binance: ``TRAILING_STOP_MARKET`` on the algo-order endpoint,
    activation price and callback rate in percent (0.5 % = 0.005), closing the position's qty."""
    res, stub = drive("binanceusdm", tmp_path, lambda exe, stub: exe.trailing_stop(1, 2.0, 151.234, 0.005, bar=100))
    assert res.ok and [(r.path, params("binanceusdm", r)) for r in private(stub, "binanceusdm", "POST")] == [
        ("/fapi/v1/algoOrder", {"symbol": "SOLUSDT", "newOrderRespType": "RESULT", "quantity": "2", "side": "SELL",
                                "clientAlgoId": "pb0-100-0", "type": "TRAILING_STOP_MARKET", "callbackRate": "0.5",
                                "activatePrice": "151.23", "reduceOnly": "true", "workingType": "MARK_PRICE",
                                "algoType": "CONDITIONAL"})]


# ---- reduce-only exit -----------------------------------------------------------------------------
EXIT = {
    "binanceusdm": {"symbol": "SOLUSDT", "side": "SELL", "newClientOrderId": "pb0-101-0", "newOrderRespType": "RESULT",
                    "type": "MARKET", "quantity": "2", "reduceOnly": "true"},
    "bybit": {"symbol": "SOLUSDT", "side": "Sell", "orderType": "Market", "orderLinkId": "pb0-101-0",
              "category": "linear", "qty": "2", "reduceOnly": True},
    "okx": [{"instId": "SOL-USDT-SWAP", "side": "sell", "ordType": "market", "sz": "2", "tdMode": "isolated",
             "clOrdId": "pb0x101x0", "reduceOnly": True}],
    "mexc": {"symbol": "SOL_USDT", "vol": 2.0, "type": 6, "openType": 1, "side": 4, "externalOid": "pb0-101-0",
             "leverage": 5},  # side 4: close long (MEXC's reduce-only form)
    "weex": {"symbol": "SOLUSDT", "side": "SELL", "quantity": "2", "type": "MARKET", "positionSide": "LONG",
             "newClientOrderId": "pb0-101-0", "reduceOnly": True},
}


@pytest.mark.parametrize("venue", VENUES)
def test_exit_is_reduce_only(venue, tmp_path):
    res, stub = drive(venue, tmp_path, lambda exe, stub: exe.close_position("signal", side=1, qty=2.0, bar=101))
    assert res.ok and res.attempts == 1
    posts = private(stub, venue, "POST")
    assert [(r.method, r.path) for r in posts] == [CREATE[venue]]
    assert params(venue, posts[0]) == EXIT[venue]


# ---- cancel ---------------------------------------------------------------------------------------
CANCEL = {
    "binanceusdm": [("DELETE", "/fapi/v1/order", {"symbol": "SOLUSDT", "orderId": "123"}),
                    ("DELETE", "/fapi/v1/algoOrder", {"symbol": "SOLUSDT", "algoId": "124"})],
    "bybit": [("POST", "/v5/order/cancel", {"symbol": "SOLUSDT", "orderId": "123", "category": "linear"}),
              ("POST", "/v5/order/cancel", {"symbol": "SOLUSDT", "orderId": "124", "category": "linear"})],
    "okx": [("POST", "/api/v5/trade/cancel-order", {"instId": "SOL-USDT-SWAP", "ordId": "123"}),
            ("POST", "/api/v5/trade/cancel-algos", [{"algoId": "124", "instId": "SOL-USDT-SWAP"}])],
    "mexc": [("POST", "/api/v1/private/order/cancel", ["123"]),
             ("POST", "/api/v1/private/planorder/cancel", [{"symbol": "SOL_USDT", "orderId": "124"}])],
    "weex": [("DELETE", "/capi/v3/order", {"orderId": "123"}), ("DELETE", "/capi/v3/algoOrder", {"orderId": "124"})],
}


@pytest.mark.parametrize("venue", VENUES)
def test_cancel_of_an_order_and_of_a_trigger_order(venue, tmp_path):
    from perpbot.exchange.clients import VENUES as MODULES

    async def steps(exe, stub):
        ok = await exe.cancel({"id": "123", "info": {}})  # the executor's cancel of a normal order
        await venue_orders.cancel(exe.ex, MODULES[venue], SYMBOL, "124", trigger=True)
        return ok
    ok, stub = drive(venue, tmp_path, steps)
    assert ok is True
    assert [(r.method, r.path, params(venue, r)) for r in private(stub, venue)] == CANCEL[venue]


# ---- position -------------------------------------------------------------------------------------
POSITION = {"binanceusdm": ("GET", "/fapi/v3/positionRisk", {}),
            "bybit": ("GET", "/v5/position/list", {"symbol": "SOLUSDT", "limit": "200", "category": "linear"}),
            "okx": ("GET", "/api/v5/account/positions", {"instId": "SOL-USDT-SWAP"}),
            "mexc": ("GET", "/api/v1/private/position/open_positions", {}),
            "weex": ("GET", "/capi/v3/account/position/allPosition", {})}


@pytest.mark.parametrize("venue", VENUES)
def test_position_is_read_and_parsed(venue, tmp_path):
    state: dict = {}

    async def steps(exe, stub):
        state["open"] = True
        return await exe.snapshot()
    snap, stub = drive(venue, tmp_path, steps, state)
    method, path, query = POSITION[venue]
    reads = [r for r in private(stub, venue, "GET") if r.path == path]
    assert len(reads) == 1 and params(venue, reads[0]) == query
    pos = snap.position
    qty = 20.0 if venue == "mexc" else 2.0  # MEXC's answer holds 20 contracts of 1 SOL; WEEX's 2 SOL (base amounts)
    assert (pos.side, pos.qty, pos.entry_price, pos.liquidation_price) == (1, qty, 150.0, 121.5)


# ---- lookup before any resend after a timeout ----------------------------------------------------
LOOKUP = {"binanceusdm": [("/fapi/v1/order", {"symbol": "SOLUSDT", "origClientOrderId": "pb0-101-0"})],
          "bybit": [("/v5/order/realtime", {"category": "linear", "symbol": "SOLUSDT", "orderLinkId": "pb0-101-0"})],
          "okx": [("/api/v5/trade/order", {"instId": "SOL-USDT-SWAP", "clOrdId": "pb0x101x0"})],
          "mexc": [("/api/v1/private/order/external/SOL_USDT/pb0-101-0", {})],
          "weex": [("/capi/v3/openOrders", {"symbol": "SOLUSDT"}), ("/capi/v3/order/history", {"symbol": "SOLUSDT"})]}


@pytest.mark.parametrize("venue", VENUES)
def test_timeout_is_looked_up_by_client_id_before_any_resend(venue, tmp_path):
    """The venue accepts the exit but answers after the 0.5 s client timeout: the executor looks the
    order up by its client id, finds it and sends no second create-order."""
    state = {"has": {"pb0-101-0", "pb0x101x0"}}  # the venue has the order (it was accepted)
    res, stub = drive(venue, tmp_path, lambda exe, stub: exe.close_position("signal", side=1, qty=2.0, bar=101),
                      state, timeout_ms=500, delays={CREATE[venue]: 1.5})
    assert res.ok and res.attempts == 1 and res.cid == "pb0-101-0"
    seen = private(stub, venue)
    lookups = [("GET", path) for path, _ in LOOKUP[venue]]
    assert [(r.method, r.path) for r in seen] == [CREATE[venue], *lookups]  # create, look-up, no resend
    assert [params(venue, r) for r in seen[1:]] == [query for _, query in LOOKUP[venue]]


@pytest.mark.parametrize("venue", VENUES)
def test_timeout_of_an_order_the_venue_does_not_have_is_resent_once_with_the_same_id(venue, tmp_path):
    """Not found on look-up: resent (same client id), and the second answer arrives in time."""
    res, stub = drive(venue, tmp_path, lambda exe, stub: exe.close_position("signal", side=1, qty=2.0, bar=101),
                      {}, timeout_ms=500, delays={CREATE[venue]: 1.5})
    seen = private(stub, venue)
    lookups = [("GET", path) for path, _ in LOOKUP[venue]]
    assert [(r.method, r.path) for r in seen] == [CREATE[venue], *lookups, CREATE[venue]]
    assert params(venue, seen[0]) == params(venue, seen[-1]) == EXIT[venue]
    assert res.ok and res.attempts == 2


def test_open_orders_of_a_venue_whose_stops_are_not_read_asks_for_the_normal_orders_only(tmp_path):
    """MEXC is not a live venue (its TP/SL orders cannot be read through ccxt): ``perpbot status`` lists its
    open orders and asks for no trigger / plan orders, which would be MEXC's plan-order service."""
    (normal, plans), stub = drive("mexc", tmp_path, lambda exe, stub: exe.open_orders())
    asked = [r.path for r in private(stub, "mexc", "GET")]
    assert plans == [] and any("open_orders" in p for p in asked) and not any("planorder" in p for p in asked)
