"""Venue answers for the market-cache tests, in the field names of each venue's public API
(Bitget v2 ``GET /api/v2/mix/market/contracts`` + ``GET /api/v2/mix/market/query-position-lever``;
Bybit v5 ``GET /v5/market/instruments-info`` + ``GET /v5/market/risk-limit``; OKX v5
``GET /api/v5/public/instruments``). SOLUSDT is Bitget's published contract (shared/reference/
bitget.md); the other numbers are test values chosen to differ from perpbot's shipped rules.

:func:`bitget_routes` answers from a mutable ``venue`` dict (contracts by symbol id, tiers by
symbol id), so a test can change the venue between two fetches.
"""

from __future__ import annotations

import copy

from _venue_payloads import BYBIT_INSTRUMENT, NOW_MS, bybit_ok, okx_ok

T0 = NOW_MS  # 2025-12-02 00:00 UTC
HOUR_MS = 3_600_000
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"


def bitget_contract(symbol: str, base: str, price_place: str, price_end_step: str, volume_place: str,
                    size_multiplier: str, min_trade_num: str, min_trade_usdt: str, max_lever: str) -> dict:
    return {"symbol": symbol, "baseCoin": base, "quoteCoin": "USDT", "buyLimitPriceRatio": "0.05",
            "sellLimitPriceRatio": "0.05", "feeRateUpRatio": "0.005", "makerFeeRate": "0.0002",
            "takerFeeRate": "0.0006", "openCostUpRatio": "0.01", "supportMarginCoins": ["USDT"],
            "minTradeNum": min_trade_num, "priceEndStep": price_end_step, "volumePlace": volume_place,
            "pricePlace": price_place, "sizeMultiplier": size_multiplier, "symbolType": "perpetual",
            "minTradeUSDT": min_trade_usdt, "maxSymbolOrderNum": "200", "maxProductOrderNum": "400",
            "maxPositionNum": "150", "symbolStatus": "normal", "offTime": "-1", "limitOpenTime": "-1",
            "deliveryTime": "", "deliveryStartTime": "", "deliveryPeriod": "", "launchTime": "",
            "fundInterval": "8", "minLever": "1", "maxLever": max_lever, "posLimit": "0.05", "maintainTime": "",
            "maxMarketOrderQty": "", "maxOrderQty": ""}


def bitget_tiers(symbol: str, rows: list[tuple[str, str, str, str]]) -> list[dict]:
    """Tier rows (startUnit, endUnit, leverage, keepMarginRate) as the venue writes them."""
    return [{"symbol": symbol, "level": str(k), "startUnit": lo, "endUnit": hi, "leverage": lev,
             "keepMarginRate": mmr} for k, (lo, hi, lev, mmr) in enumerate(rows, start=1)]


#: SOLUSDT as published; BTCUSDT with a 0.001 lot and a 0.002 minimum (shipped: 0.0001 / 0.0001)
#: and a 10 USDT minimum order value; ETHUSDT with a price step of 5 x 10^-2 = 0.05 (shipped 0.01).
BITGET_CONTRACTS = {
    "SOLUSDT": bitget_contract("SOLUSDT", "SOL", "3", "1", "1", "0.1", "0.1", "5", "100"),
    "BTCUSDT": bitget_contract("BTCUSDT", "BTC", "1", "1", "3", "0.001", "0.002", "10", "125"),
    "ETHUSDT": bitget_contract("ETHUSDT", "ETH", "2", "5", "2", "0.01", "0.01", "5", "100"),
}
BITGET_TIERS = {
    "SOLUSDT": bitget_tiers("SOLUSDT", [("0", "50000", "100", "0.005"), ("50000", "100000", "75", "0.008"),
                                        ("100000", "1000000", "50", "0.01")]),
    "BTCUSDT": bitget_tiers("BTCUSDT", [("0", "150000", "125", "0.004"), ("150000", "900000", "100", "0.005"),
                                        ("900000", "2400000", "75", "0.0065"), ("2400000", "9000000", "50", "0.01")]),
    "ETHUSDT": bitget_tiers("ETHUSDT", [("0", "100000", "100", "0.005"), ("100000", "500000", "75", "0.0065")]),
}


def bitget_ok(data) -> dict:
    return {"code": "00000", "msg": "success", "requestTime": T0, "data": data}


def bitget_venue() -> dict:
    """A fresh, mutable copy of the Bitget venue's state."""
    return {"contracts": copy.deepcopy(BITGET_CONTRACTS), "tiers": copy.deepcopy(BITGET_TIERS)}


def bitget_routes(venue: dict) -> dict:
    """Routes of the Bitget public endpoints ccxt's ``load_markets`` (swap, classic account) and
    ``fetch_market_leverage_tiers`` ask: coins, the contracts of each product type (USDT-FUTURES
    only here), the position tiers of one symbol."""
    def contracts(r):
        return bitget_ok(list(venue["contracts"].values()) if r.query.get("productType") == "USDT-FUTURES" else [])

    def tiers(r):
        if r.query.get("productType") != "USDT-FUTURES" or r.query.get("symbol") not in venue["tiers"]:
            return {"code": "40034", "msg": "Parameter does not exist", "requestTime": T0, "data": None}
        return bitget_ok(venue["tiers"][r.query["symbol"]])

    return {("GET", "/api/v2/spot/public/coins"): bitget_ok([]),
            ("GET", "/api/v2/mix/market/contracts"): contracts,
            ("GET", "/api/v2/mix/market/query-position-lever"): tiers}


CONTRACTS_PATH = "/api/v2/mix/market/contracts"
TIERS_PATH = "/api/v2/mix/market/query-position-lever"

#: Bybit v5 risk limits of SOLUSDT (riskLimitValue USDT, maintenanceMargin a rate)
BYBIT_RISK = [
    {"id": 1, "symbol": "SOLUSDT", "riskLimitValue": "200000", "maintenanceMargin": "0.01", "initialMargin": "0.02",
     "isLowestRisk": 1, "maxLeverage": "50.00", "mmDeduction": "0"},
    {"id": 2, "symbol": "SOLUSDT", "riskLimitValue": "400000", "maintenanceMargin": "0.015",
     "initialMargin": "0.025", "isLowestRisk": 0, "maxLeverage": "40.00", "mmDeduction": "1000"},
]


def bybit_routes() -> dict:
    def instruments(r):
        rows = [] if r.query.get("status") == "PreLaunch" else [BYBIT_INSTRUMENT]
        return bybit_ok({"category": "linear", "list": rows, "nextPageCursor": ""})

    return {("GET", "/v5/market/instruments-info"): instruments,
            ("GET", "/v5/market/risk-limit"): lambda r: bybit_ok({"category": "linear", "list": BYBIT_RISK
                                                                  if r.query.get("symbol") == "SOLUSDT" else []})}


#: OKX ETH-USDT-SWAP: one contract is 0.1 ETH (ctVal), amounts in contracts of 0.01 (lotSz / minSz)
OKX_ETH = {"instType": "SWAP", "instId": "ETH-USDT-SWAP", "uly": "ETH-USDT", "instFamily": "ETH-USDT", "baseCcy": "",
           "quoteCcy": "", "settleCcy": "USDT", "ctVal": "0.1", "ctMult": "1", "ctValCcy": "ETH", "ctType": "linear",
           "lotSz": "0.01", "tickSz": "0.01", "minSz": "0.01", "state": "live", "listTime": "1611916828000",
           "expTime": "", "lever": "100", "maxMktSz": "10000", "maxLmtSz": "100000", "alias": "", "optType": "",
           "stk": "", "category": "1", "ruleType": "normal"}


def okx_routes() -> dict:
    return {("GET", "/api/v5/public/instruments"): lambda r: okx_ok([OKX_ETH] if r.query.get("instType") == "SWAP"
                                                                     else [])}
