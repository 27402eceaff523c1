"""Binance USDⓈ-M market rules of the simulator: the ``/fapi/v1/exchangeInfo`` payload, the
fee rates and the leverage brackets, and their translation into the contract row the shared
Bitget engine reads (:class:`~perpbot.devtools.bitget_sim.market.ReplayMarket` ``spec``).

Sources: SOLUSDT's filters are those of Binance's ``GET /fapi/v1/exchangeInfo`` (tickSize 0.01,
LOT_SIZE stepSize 1 / minQty 1, MIN_NOTIONAL 5; recorded in the project's venue tests);
BTCUSDT (tick 0.10, step / minQty 0.001, min notional 100) and ETHUSDT (tick 0.01, step / minQty
0.001, min notional 20) as Binance's exchangeInfo listed them in 2025 (project lead's brief).
The min notional is not checked on reduce-only orders (Binance FAQ "USDⓈ-Margined Futures
Contract Specifications", 360033161972). Fees: Binance USDⓈ-M VIP 0, taker 0.05 %, maker
0.02 % (Binance fee schedule). Leverage brackets: the simulator keeps ONE tier table for
liquidation (:data:`perpbot.devtools.bitget_sim.market.TIERS`, used by the engine) and serves
it as ``/fapi/v1/leverageBracket`` so that ccxt's maintenance figures equal the engine's.
"""

from __future__ import annotations

import copy
from typing import Any

from perpbot.devtools.bitget_sim.market import CONTRACTS, TIERS, num

TAKER_FEE = 0.0005
MAKER_FEE = 0.0002

#: symbol -> (tickSize, stepSize, minQty, min notional USDT, pricePrecision, quantityPrecision)
RULES = {
    "SOLUSDT": ("0.0100", "1", "1", "5", 4, 0),
    "BTCUSDT": ("0.10", "0.001", "0.001", "100", 2, 3),
    "ETHUSDT": ("0.01", "0.001", "0.001", "20", 2, 3),
}

_SOL: dict[str, Any] = {
    "symbol": "SOLUSDT", "pair": "SOLUSDT", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
    "onboardDate": 1569398400000, "status": "TRADING", "baseAsset": "SOL", "quoteAsset": "USDT",
    "marginAsset": "USDT", "pricePrecision": 4, "quantityPrecision": 0, "baseAssetPrecision": 8,
    "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": ["Layer-1"],
    "triggerProtect": "0.0500", "liquidationFee": "0.015000", "marketTakeBound": "0.05",
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.4200", "maxPrice": "6857", "tickSize": "0.0100"},
        {"filterType": "LOT_SIZE", "minQty": "1", "maxQty": "1000000", "stepSize": "1"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "1", "maxQty": "5000", "stepSize": "1"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": "5"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
         "multiplierDecimal": "4"}],
    "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                   "TRAILING_STOP_MARKET"],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX"]}


def symbol_info(symbol: str) -> dict:
    """One ``symbols[]`` row of exchangeInfo for ``symbol`` (a key of :data:`RULES`); KeyError otherwise."""
    tick, step, min_qty, notional, pp, qp = RULES[symbol]
    if symbol == "SOLUSDT":
        return copy.deepcopy(_SOL)
    row = copy.deepcopy(_SOL)
    filters = row["filters"]
    base = symbol[:-4]
    row.update(symbol=symbol, pair=symbol, baseAsset=base, pricePrecision=pp, quantityPrecision=qp,
               underlyingSubType=["PoW"] if base == "BTC" else ["Layer-1"])
    filters[0].update(minPrice=tick, maxPrice="4529764", tickSize=tick)
    filters[1].update(minQty=min_qty, stepSize=step, maxQty="1000")
    filters[2].update(minQty=min_qty, stepSize=step, maxQty="120")
    filters[5].update(notional=notional)
    return row


def exchange_info(symbols=("SOLUSDT",), server_time: int = 0) -> dict:
    """The ``GET /fapi/v1/exchangeInfo`` payload listing ``symbols`` (keys of :data:`RULES`)."""
    return {"timezone": "UTC", "serverTime": int(server_time), "futuresType": "U_MARGINED", "rateLimits": [],
            "exchangeFilters": [], "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": [symbol_info(s) for s in symbols]}


def _places(step: str) -> int:
    s = step.rstrip("0")
    return len(s.split(".")[1]) if "." in s else 0


def engine_spec(symbol: str) -> dict:
    """The Binance rules of ``symbol`` as the Bitget-shaped contract row the engine reads: tick,
    lot, min quantity, min notional, Binance VIP 0 fees; max leverage = the first bracket's."""
    tick, step, min_qty, notional, _pp, _qp = RULES[symbol]
    price_place = _places(tick)
    return {**CONTRACTS[symbol], "pricePlace": str(price_place),
            "priceEndStep": str(round(float(tick) * 10 ** price_place)), "volumePlace": str(_places(step)),
            "sizeMultiplier": step, "minTradeNum": min_qty, "minTradeUSDT": notional,
            "takerFeeRate": str(TAKER_FEE), "makerFeeRate": str(MAKER_FEE), "maxLever": str(TIERS[0][2])}


def leverage_brackets(symbol: str) -> dict:
    """``GET /fapi/v1/leverageBracket`` row of ``symbol`` from the engine's tier table; ``cum`` is
    Binance's maintenance amount (sum of floor x (mmr_k - mmr_{k-1}))."""
    out, floor, cum, prev = [], 0.0, 0.0, 0.0
    for k, (cap, mmr, lev) in enumerate(TIERS, start=1):
        cum += floor * (mmr - prev)
        out.append({"bracket": k, "initialLeverage": lev, "notionalCap": cap, "notionalFloor": floor,
                     "maintMarginRatio": mmr, "cum": float(num(cum))})
        floor, prev = cap, mmr
    return {"symbol": symbol, "notionalCoef": 1.0, "brackets": out}
