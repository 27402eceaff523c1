"""Venue answers for the spot request tests (Indodax, Tokocrypto): markets quoted in IDR and USDT
(and one in BTC, which perpbot does not trade), orders, balances and server time, in the field
names of each venue's API documentation (btcid/indodax-official-api-docs ``Public-RestAPI.md`` /
``Private-RestAPI.md``; tokocrypto.com/apidocs) and the shapes ccxt's parsers read. Values are test
values, not live market data.

Every Indodax private call is ``POST /tapi`` named by the form field ``method``: :func:`indodax_routes`
answers by that name. Orders the venue "has" (``state["has"]``, client ids) are found by the
look-ups; created orders are added to it.
"""

from __future__ import annotations

import time

from _venue_payloads import NOW_MS

SECONDS = NOW_MS // 1000


def _now_ms(_r=None) -> int:
    return int(time.time() * 1000)


# ---- Indodax ---------------------------------------------------------------------------------
def _indodax_pair(base: str, quote: str, price_round: int, min_quote: float, min_base: float) -> dict:
    return {"id": f"{base}{quote}", "symbol": f"{base}{quote}".upper(), "base_currency": quote,
            "traded_currency": base, "traded_currency_unit": base.upper(), "description": f"{base}/{quote}".upper(),
            "ticker_id": f"{base}_{quote}", "volume_precision": 0, "price_precision": 1000, "price_round": price_round,
            "pricescale": 1000, "trade_min_base_currency": min_quote, "trade_min_traded_currency": min_base,
            "has_memo": False, "memo_name": False, "trade_fee_percent": 0.3, "is_maintenance": 0}


INDODAX_PAIRS = [_indodax_pair("sol", "idr", 0, 10000, 0.001), _indodax_pair("sol", "usdt", 2, 1, 0.001),
                 _indodax_pair("sol", "btc", 8, 0.0001, 0.001)]


def indodax_ok(ret: dict) -> dict:
    return {"success": 1, "return": ret}


def indodax_order(cid: str, order_id: str = "59639504") -> dict:
    """A filled market buy of SOL for 1,200,000 IDR (getOrder / getOrderByClientOrderId)."""
    return {"order_id": order_id, "client_order_id": cid, "price": "2400000", "type": "buy", "order_rp": "1200000",
            "remain_rp": "0", "submit_time": str(SECONDS), "finish_time": str(SECONDS), "status": "filled",
            "receive_sol": "0.49850000"}


def indodax_routes(state: dict) -> dict:
    has = state.setdefault("has", set())

    def trade(r):
        cid = r.form.get("client_order_id", "")
        has.add(cid)
        return indodax_ok({"receive_sol": "0.00000000", "spend_rp": 0, "fee": 0, "remain_rp": 1200000,
                           "order_id": 59632813, "client_order_id": cid})

    def by_client_id(r):
        cid = r.form["client_order_id"]
        return indodax_ok({"order": indodax_order(cid)}) if cid in has else {"success": 0, "error": "invalid order."}

    private = {
        "trade": trade,
        "getInfo": lambda r: indodax_ok({"server_time": SECONDS, "balance": {"idr": 5000000, "sol": "1.25000000",
                                                                             "usdt": "0"},
                                         "balance_hold": {"idr": 1200000, "sol": "0.10000000", "usdt": "0"},
                                         "user_id": "00001"}),
        "getOrder": lambda r: indodax_ok({"order": indodax_order("pb0-7-0", r.form["order_id"])}),
        "getOrderByClientOrderId": by_client_id,
        "cancelOrder": lambda r: indodax_ok({"order_id": int(r.form["order_id"]), "client_order_id": "pb0-7-0",
                                             "type": r.form["type"], "pair": "sol_idr",
                                             "balance": {"idr": "5000000", "sol": "1.25000000"}}),
    }
    return {("GET", "/api/pairs"): INDODAX_PAIRS,
            ("GET", "/api/server_time"): lambda r: {"timezone": "UTC", "server_time": _now_ms()},
            ("POST", "/tapi"): lambda r: private[r.form["method"]](r)}


# ---- Tokocrypto ------------------------------------------------------------------------------
def _toko_symbol(base: str, quote: str, kind: int, tick: str, step: str, min_notional: str) -> dict:
    return {"type": kind, "symbol": f"{base}_{quote}", "baseAsset": base, "basePrecision": 8, "quoteAsset": quote,
            "quotePrecision": 8, "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "100000000", "tickSize": tick,
                 "applyToMarket": False},
                {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "90000", "stepSize": step, "applyToMarket": False},
                {"filterType": "MIN_NOTIONAL", "avgPriceMins": "5", "minNotional": min_notional,
                 "applyToMarket": True}],
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergEnable": 1, "ocoEnable": 1, "spotTradingEnable": 1, "marginTradingEnable": 0,
            "permissions": ["SPOT"]}


TOKO_SYMBOLS = [_toko_symbol("SOL", "USDT", 1, "0.01", "0.001", "5"), _toko_symbol("SOL", "IDR", 3, "1", "0.001",
                                                                                     "10000")]


def toko_ok(data) -> dict:
    return {"code": 0, "msg": "Success", "data": data, "timestamp": NOW_MS}


def toko_order(cid: str, order_id: str = "145265071", status: int = 2) -> dict:
    """A filled market buy of 0.5 SOL for 75 USDT (open/v1 order shape)."""
    return {"orderId": order_id, "bOrderListId": "0", "clientId": cid, "bOrderId": "35247529", "symbol": "SOL_USDT",
            "symbolType": 1, "side": 0, "type": 2, "price": "0", "origQty": "0.5", "origQuoteQty": "75",
            "executedQty": "0.5", "executedPrice": "150", "executedQuoteQty": "75", "timeInForce": 1,
            "stopPrice": "0", "icebergQty": "0", "status": status, "createTime": NOW_MS}


def toko_routes(state: dict) -> dict:
    has = state.setdefault("has", set())

    def create(r):
        cid = r.form.get("clientId", "")
        has.add(cid)
        return toko_ok(toko_order(cid, status=0))

    def orders(r):
        if "orderId" in r.query:
            return toko_ok({"list": [toko_order("pb0-7-0", r.query["orderId"])]})
        return toko_ok({"list": [toko_order(c) for c in sorted(has)]})

    return {("GET", "/open/v1/common/symbols"): toko_ok({"list": TOKO_SYMBOLS}),
            ("GET", "/open/v1/common/time"): lambda r: {"code": 0, "msg": "Success", "data": None,
                                                        "timestamp": _now_ms()},
            ("POST", "/open/v1/orders"): create,
            ("GET", "/open/v1/orders"): orders,
            ("POST", "/open/v1/orders/cancel"): lambda r: toko_ok({**toko_order("pb0-7-0", r.form["orderId"]),
                                                                   "status": 3}),
            ("GET", "/open/v1/account/spot"): toko_ok({
                "makerCommission": "0.00100000", "takerCommission": "0.00100000", "canTrade": 1, "canWithdraw": 1,
                "canDeposit": 1, "status": 1, "accountAssets": [
                    {"asset": "SOL", "free": "1.25", "locked": "0.1"}, {"asset": "USDT", "free": "312.5",
                                                                         "locked": "75"}]})}


def routes(venue: str, state: dict) -> dict:
    return indodax_routes(state) if venue == "indodax" else toko_routes(state)
