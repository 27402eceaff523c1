"""Venue answers for the request tests: one SOL/USDT perpetual per venue and minimal order /
position answers, in the field names of each venue's API documentation (Binance USDⓈ-M /fapi,
Bybit v5, OKX v5, MEXC contract v1, WEEX contract v3) and the shapes ccxt's parsers read.
Values are test values, not live market data (WEEX's contract face value 0.1 SOL is one, chosen
to show that perpbot does not scale WEEX's base-asset amounts by it)."""

from __future__ import annotations

import time

from fake_venues import _binance_info, _okx_instrument
from perpbot.devtools.bybit_sim.info import instrument as bybit_instrument

SYMBOL = "SOL/USDT:USDT"
NOW_MS = 1_764_633_600_000  # 2025-12-02 00:00 UTC, the ``time`` of answers


def binance_order(cid: str, status: str = "FILLED", side: str = "SELL", reduce: bool = True) -> dict:
    return {"orderId": 4242, "symbol": "SOLUSDT", "status": status, "clientOrderId": cid, "price": "0",
            "avgPrice": "150.00", "origQty": "2", "executedQty": "2", "cumQuote": "300.00", "timeInForce": "GTC",
            "type": "MARKET", "reduceOnly": reduce, "closePosition": False, "side": side, "positionSide": "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "origType": "MARKET", "updateTime": NOW_MS}


BINANCE = {
    ("GET", "/fapi/v1/exchangeInfo"): _binance_info(),
    ("POST", "/fapi/v1/marginType"): {"code": 200, "msg": "success"},
    ("POST", "/fapi/v1/leverage"): {"leverage": 5, "maxNotionalValue": "1000000", "symbol": "SOLUSDT"},
    ("GET", "/fapi/v1/leverageBracket"): [],
    ("GET", "/fapi/v3/positionRisk"): [{
        "symbol": "SOLUSDT", "positionSide": "BOTH", "positionAmt": "2", "entryPrice": "150.0", "breakEvenPrice": "150.1",
        "markPrice": "151.0", "unRealizedProfit": "2.0", "liquidationPrice": "121.5", "isolatedMargin": "62.0",
        "notional": "302.0", "marginAsset": "USDT", "isolatedWallet": "60.0", "initialMargin": "60.4",
        "maintMargin": "1.5", "positionInitialMargin": "60.4", "openOrderInitialMargin": "0", "adl": 1,
        "bidNotional": "0", "askNotional": "0", "updateTime": NOW_MS}],
}

BYBIT_INSTRUMENT = bybit_instrument("SOLUSDT")  # the one copy lives in the Bybit simulator


def bybit_ok(result) -> dict:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": NOW_MS}


def bybit_order(cid: str) -> dict:
    return {"orderId": "b-4242", "orderLinkId": cid, "symbol": "SOLUSDT", "side": "Sell", "orderType": "Market",
            "price": "0", "qty": "2", "cumExecQty": "2", "avgPrice": "150.00", "orderStatus": "Filled",
            "reduceOnly": True, "timeInForce": "IOC", "createdTime": str(NOW_MS), "updatedTime": str(NOW_MS)}


BYBIT = {
    ("GET", "/v5/market/instruments-info"): bybit_ok({"category": "linear", "list": [BYBIT_INSTRUMENT],
                                                      "nextPageCursor": ""}),
    ("POST", "/v5/account/set-margin-mode"): bybit_ok({"reasons": []}),
    ("POST", "/v5/position/set-leverage"): bybit_ok({}),
    ("POST", "/v5/order/create"): bybit_ok({"orderId": "b-4242", "orderLinkId": "x"}),
    ("POST", "/v5/order/cancel"): bybit_ok({"orderId": "b-123", "orderLinkId": ""}),
    ("GET", "/v5/position/list"): bybit_ok({"category": "linear", "nextPageCursor": "", "list": [{
        "positionIdx": 0, "symbol": "SOLUSDT", "side": "Buy", "size": "2", "avgPrice": "150.0", "positionValue": "300",
        "tradeMode": 1, "leverage": "5", "markPrice": "151.0", "liqPrice": "121.5", "positionIM": "60.4",
        "positionMM": "1.5", "unrealisedPnl": "2.0", "cumRealisedPnl": "0", "stopLoss": "140.00",
        "takeProfit": "160.00", "createdTime": str(NOW_MS), "updatedTime": str(NOW_MS)}]}),
}


def okx_ok(data: list) -> dict:
    return {"code": "0", "msg": "", "data": data}


def okx_order(cl_ord_id: str) -> dict:
    return {"instType": "SWAP", "instId": "SOL-USDT-SWAP", "ordId": "o-4242", "clOrdId": cl_ord_id, "px": "",
            "sz": "2", "ordType": "market", "side": "sell", "posSide": "net", "tdMode": "isolated",
            "accFillSz": "2", "avgPx": "150.00", "state": "filled", "reduceOnly": "true", "cTime": str(NOW_MS),
            "uTime": str(NOW_MS), "fee": "-0.09", "feeCcy": "USDT"}


OKX = {
    ("GET", "/api/v5/public/instruments"): okx_ok([_okx_instrument()]),
    ("GET", "/api/v5/account/config"): okx_ok([{"uid": "44705892343619584", "acctLv": "2", "posMode": "net_mode"}]),
    ("POST", "/api/v5/account/set-leverage"): okx_ok([{"lever": "5", "mgnMode": "isolated",
                                                       "instId": "SOL-USDT-SWAP", "posSide": "net"}]),
    ("POST", "/api/v5/trade/order"): okx_ok([{"ordId": "o-4242", "clOrdId": "x", "sCode": "0", "sMsg": ""}]),
    ("POST", "/api/v5/trade/cancel-order"): okx_ok([{"ordId": "o-123", "clOrdId": "", "sCode": "0", "sMsg": ""}]),
    ("GET", "/api/v5/account/positions"): okx_ok([{
        "instType": "SWAP", "instId": "SOL-USDT-SWAP", "mgnMode": "isolated", "posId": "p1", "posSide": "net",
        "pos": "2", "ccy": "USDT", "avgPx": "150.0", "markPx": "151.0", "liqPx": "121.5", "lever": "5", "upl": "2.0",
        "imr": "", "margin": "60.0", "mmr": "1.5", "notionalUsd": "302", "cTime": str(NOW_MS), "uTime": str(NOW_MS)}]),
}

MEXC_CONTRACT = {
    "symbol": "SOL_USDT", "displayName": "SOL_USDT PERPETUAL", "displayNameEn": "SOL_USDT PERPETUAL",
    "positionOpenType": 3, "baseCoin": "SOL", "quoteCoin": "USDT", "settleCoin": "USDT", "contractSize": 1,
    "minLeverage": 1, "maxLeverage": 200, "priceScale": 2, "volScale": 0, "amountScale": 4, "priceUnit": 0.01,
    "volUnit": 1, "minVol": 1, "maxVol": 1000000, "bidLimitPriceRate": 0.1, "askLimitPriceRate": 0.1,
    "takerFeeRate": 0.0002, "makerFeeRate": 0, "maintenanceMarginRate": 0.004, "initialMarginRate": 0.005,
    "state": 0, "isNew": False, "isHot": False, "isHidden": False, "apiAllowed": True}


def mexc_ok(data) -> dict:
    return {"success": True, "code": 0, "data": data}


def mexc_order(cid: str) -> dict:
    return {"orderId": "m-4242", "symbol": "SOL_USDT", "positionId": 77, "price": 0, "vol": 20, "leverage": 5,
            "side": 4, "category": 1, "orderType": 5, "dealAvgPrice": 150.0, "dealVol": 20, "orderMargin": 0,
            "takerFee": 0.06, "makerFee": 0, "profit": 0, "feeCurrency": "USDT", "openType": 1, "state": 3,
            "externalOid": cid, "errorCode": 0, "usedMargin": 0, "createTime": NOW_MS, "updateTime": NOW_MS}


MEXC = {
    ("GET", "/api/v1/contract/detail"): mexc_ok([MEXC_CONTRACT]),
    ("POST", "/api/v1/private/position/change_leverage"): mexc_ok(None),
    ("POST", "/api/v1/private/order/create"): mexc_ok({"orderId": "m-4242", "ts": NOW_MS}),
    ("POST", "/api/v1/private/order/cancel"): mexc_ok([{"orderId": "m-123", "errorCode": 0, "errorMsg": "success"}]),
    ("GET", "/api/v1/private/position/open_positions"): mexc_ok([{
        "positionId": 77, "symbol": "SOL_USDT", "positionType": 1, "openType": 1, "state": 1, "holdVol": 20,
        "frozenVol": 0, "closeVol": 0, "holdAvgPrice": 150.0, "openAvgPrice": 150.0, "closeAvgPrice": 0,
        "liquidatePrice": 121.5, "oim": 60.0, "im": 60.0, "holdFee": 0, "realised": 0, "leverage": 5,
        "createTime": NOW_MS, "updateTime": NOW_MS}]),
}

WEEX_CONTRACT = {
    "symbol": "SOLUSDT", "baseAsset": "SOL", "quoteAsset": "USDT", "marginAsset": "USDT", "pricePrecision": "2",
    "quantityPrecision": "1", "baseAssetPrecision": "1", "quotePrecision": "8", "contractVal": "0.1",
    "delivery": ["00:00:00", "08:00:00", "16:00:00"], "forwardContractFlag": True, "minLeverage": "1",
    "maxLeverage": "100", "buyLimitPriceRatio": "0.05", "sellLimitPriceRatio": "0.05", "makerFeeRate": "0.0002",
    "takerFeeRate": "0.0008", "minOrderSize": "0.1", "maxOrderSize": "100000", "maxPositionSize": "500000",
    "marketOpenLimitSize": "10000"}
WEEX_OK = {"code": "200", "msg": "success"}


def weex_order(cid: str, status: str = "FILLED") -> dict:
    return {"avgPrice": "150.00", "clientOrderId": cid, "cumQuote": "300.00", "executedQty": "2", "orderId": 4242,
            "origQty": "2", "price": "0", "reduceOnly": True, "side": "SELL", "positionSide": "LONG",
            "status": status, "stopPrice": "0", "symbol": "SOLUSDT", "time": NOW_MS, "timeInForce": "IOC",
            "type": "MARKET", "updateTime": NOW_MS, "workingType": "CONTRACT_PRICE"}


WEEX = {
    ("GET", "/api/v3/exchangeInfo"): {"symbols": []},  # the spot markets ccxt loads too
    ("GET", "/capi/v3/market/exchangeInfo"): {"symbols": [WEEX_CONTRACT]},
    ("GET", "/capi/v3/account/balance"): [{"asset": "USDT", "balance": "1000", "availableBalance": "1000",
                                           "frozen": "0", "unrealizePnl": "0"}],
    ("POST", "/capi/v3/account/marginType"): WEEX_OK,
    ("POST", "/capi/v3/account/leverage"): WEEX_OK,
    ("DELETE", "/capi/v3/order"): {"orderId": 123, "status": "CANCELED"},
    ("DELETE", "/capi/v3/algoOrder"): {"algoId": 124, "success": True},
    ("GET", "/capi/v3/openOrders"): [],
    ("GET", "/capi/v3/account/position/allPosition"): [{
        "id": 77, "asset": "USDT", "symbol": "SOLUSDT", "side": "LONG", "marginType": "ISOLATED",
        "separatedMode": "COMBINED", "separatedOpenOrderId": 0, "leverage": "5.00", "size": "2", "openValue": "300.0",
        "openFee": "0.24", "fundingFee": "0", "marginSize": "60", "isolatedMargin": "60",
        "isAutoAppendIsolatedMargin": False, "cumOpenSize": "2", "cumOpenValue": "300.0", "cumOpenFee": "0.24",
        "cumCloseSize": "0", "cumCloseValue": "0", "cumCloseFee": "0", "cumFundingFee": "0", "cumLiquidateFee": "0",
        "createdTime": NOW_MS, "updatedTime": NOW_MS, "unrealizePnl": "2.0", "liquidatePrice": "121.5"}],
}

# -- answers that depend on the request or on the test's state ------------------------------------
_POSITIONS = {"binanceusdm": ("GET", "/fapi/v3/positionRisk"), "bybit": ("GET", "/v5/position/list"),
              "okx": ("GET", "/api/v5/account/positions"), "mexc": ("GET", "/api/v1/private/position/open_positions"),
              "weex": ("GET", "/capi/v3/account/position/allPosition")}
_FLAT = {"binanceusdm": [], "bybit": bybit_ok({"category": "linear", "list": [], "nextPageCursor": ""}),
         "okx": okx_ok([]), "mexc": mexc_ok([]), "weex": []}


def _now(_r=None) -> int:
    return int(time.time() * 1000)


def _created(venue: str):
    """The create-order answer echoing the request's client order id."""
    def answer(r):
        if venue == "binanceusdm":
            q = r.form
            return binance_order(q.get("newClientOrderId", ""), "NEW", q.get("side", "BUY"), q.get("reduceOnly") == "true")
        if venue == "bybit":
            return bybit_ok({"orderId": "b-4242", "orderLinkId": r.json.get("orderLinkId")})
        if venue == "okx":
            return okx_ok([{"ordId": "o-4242", "clOrdId": r.json[0].get("clOrdId"), "sCode": "0", "sMsg": ""}])
        if venue == "weex":
            return {"orderId": 4242, "clientOrderId": r.json.get("newClientOrderId"), "success": True}
        return mexc_ok({"orderId": "m-4242", "ts": NOW_MS})
    return answer


def routes(venue: str, state: dict) -> dict:
    """The stub's routes for ``venue``: markets, server time, margin / leverage, orders (created
    orders echo their client id; a look-up by client id finds the order when ``state["has"]``
    holds that id), cancel, and the position (open when ``state["open"]``)."""
    out = dict(ROUTES[venue])
    pos_key = _POSITIONS[venue]
    pos_open = out[pos_key]
    out[pos_key] = lambda r: pos_open if state.get("open") else _FLAT[venue]
    has = state.setdefault("has", set())
    if venue == "binanceusdm":
        out[("GET", "/fapi/v1/time")] = lambda r: {"serverTime": _now()}
        out[("POST", "/fapi/v1/order")] = out[("POST", "/fapi/v1/algoOrder")] = _created(venue)
        out[("GET", "/fapi/v1/order")] = lambda r: (binance_order(r.query["origClientOrderId"])
                                                    if r.query.get("origClientOrderId") in has
                                                    else {"code": -2013, "msg": "Order does not exist."})
        out[("DELETE", "/fapi/v1/order")] = lambda r: binance_order("pb-any", "CANCELED")
    elif venue == "bybit":
        out[("GET", "/v5/market/time")] = lambda r: bybit_ok({"timeSecond": str(_now() // 1000),
                                                              "timeNano": str(_now() * 1_000_000)})
        out[("POST", "/v5/order/create")] = _created(venue)
        out[("GET", "/v5/order/realtime")] = lambda r: bybit_ok({"category": "linear", "nextPageCursor": "", "list": [
            bybit_order(r.query["orderLinkId"])] if r.query.get("orderLinkId") in has else []})
    elif venue == "okx":
        out[("GET", "/api/v5/public/time")] = lambda r: okx_ok([{"ts": str(_now())}])
        out[("POST", "/api/v5/trade/batch-orders")] = _created(venue)
        out[("GET", "/api/v5/trade/order")] = lambda r: (okx_ok([okx_order(r.query["clOrdId"])])
                                                         if r.query.get("clOrdId") in has else
                                                         {"code": "51603", "msg": "Order does not exist", "data": []})
    elif venue == "weex":
        out[("GET", "/capi/v3/market/time")] = lambda r: {"serverTime": _now()}
        out[("POST", "/capi/v3/order")] = _created(venue)
        out[("GET", "/capi/v3/order/history")] = lambda r: [weex_order(c) for c in sorted(has)]
    else:
        out[("GET", "/api/v1/contract/ping")] = lambda r: mexc_ok(_now())
        out[("GET", "/api/v1/private/order/external/SOL_USDT/*")] = lambda r: (
            mexc_ok(mexc_order(r.path.rsplit("/", 1)[1])) if r.path.rsplit("/", 1)[1] in has else mexc_ok(None))
    return out


FALLBACK = {"binanceusdm": {}, "bybit": bybit_ok({}), "okx": okx_ok([]), "mexc": mexc_ok([]), "weex": {}}
ROUTES = {"binanceusdm": BINANCE, "bybit": BYBIT, "okx": OKX, "mexc": MEXC, "weex": WEEX}
