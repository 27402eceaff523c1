"""Bybit USDT-perpetual market rules of the simulator: the ``/v5/market/instruments-info`` rows,
the fee rates, and their translation into the contract row the shared Bitget engine reads
(:class:`~perpbot.devtools.bitget_sim.market.ReplayMarket` ``spec``).

Sources: SOLUSDT's row is Bybit's ``GET /v5/market/instruments-info?category=linear`` answer as
recorded in the project's venue tests (``tests/_venue_payloads.py``: tickSize 0.010, qtyStep /
minOrderQty 0.1, minNotionalValue 5, maxLeverage 100, priceScale 3). BTCUSDT (tick 0.10, qty step /
min 0.001) and ETHUSDT (tick 0.01, qty step / min 0.01), min notional 5 USDT, as Bybit listed them
in 2025 (not recorded here; only SOLUSDT is used by the tests). A linear contract's ``qty`` is in
the base coin (ccxt: ``contractSize`` 1), so perpbot's base-asset amounts go through unchanged.
Fees: Bybit "Trading Fee Structure", VIP 0 perpetual & futures: taker 0.055 %, maker 0.02 %
(ccxt's markets say taker 0.06 % / maker 0.01 %, its own defaults: instruments-info has no fees).
The engine keeps ONE tier table for liquidation (:data:`perpbot.devtools.bitget_sim.market.TIERS`,
max leverage 100 in its first tier) whatever Bybit's risk limits are.
"""

from __future__ import annotations

import copy
from typing import Any

from perpbot.devtools.bitget_sim.market import CONTRACTS, TIERS

TAKER_FEE = 0.00055
MAKER_FEE = 0.0002

#: symbol -> (tickSize, qtyStep, minOrderQty, minNotionalValue, priceScale)
RULES = {
    "SOLUSDT": ("0.010", "0.1", "0.1", "5", "3"),
    "BTCUSDT": ("0.10", "0.001", "0.001", "5", "2"),
    "ETHUSDT": ("0.01", "0.01", "0.01", "5", "2"),
}

_SOL: dict[str, Any] = {
    "symbol": "SOLUSDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "SOL", "quoteCoin": "USDT",
    "launchTime": "1635724800000", "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": "3",
    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "priceFilter": {"minPrice": "0.010", "maxPrice": "19999.980", "tickSize": "0.010"},
    "lotSizeFilter": {"maxOrderQty": "79770.0", "minOrderQty": "0.1", "qtyStep": "0.1", "postOnlyMaxOrderQty": "79770.0",
                      "maxMktOrderQty": "16300.0", "minNotionalValue": "5"},
    "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": "USDT", "copyTrading": "both",
    "upperFundingRate": "0.02", "lowerFundingRate": "-0.02", "isPreListing": False, "preListingInfo": None,
    "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"}, "displayName": ""}


def instrument(symbol: str) -> dict:
    """One ``list[]`` row of instruments-info for ``symbol`` (a key of :data:`RULES`); KeyError otherwise."""
    tick, step, min_qty, notional, scale = RULES[symbol]
    row: dict[str, Any] = copy.deepcopy(_SOL)
    if symbol != "SOLUSDT":
        row.update(symbol=symbol, baseCoin=symbol[:-4], priceScale=scale)
        row["priceFilter"].update(minPrice=tick, tickSize=tick, maxPrice="1999999.80")
        row["lotSizeFilter"].update(qtyStep=step, minOrderQty=min_qty, minNotionalValue=notional,
                                    maxOrderQty="1190.000", postOnlyMaxOrderQty="1190.000", maxMktOrderQty="500.000")
    return row


def _places(step: str) -> int:
    s = step.rstrip("0")
    return len(s.split(".")[1]) if "." in s else 0


def engine_spec(symbol: str) -> dict:
    """The Bybit rules of ``symbol`` as the Bitget-shaped contract row the engine reads: tick, lot,
    minimum quantity and notional, Bybit VIP 0 fees; max leverage = the first tier's."""
    tick, step, min_qty, notional, _scale = RULES[symbol]
    places = _places(tick)
    return {**CONTRACTS[symbol], "pricePlace": str(places), "priceEndStep": str(round(float(tick) * 10 ** places)),
            "volumePlace": str(_places(step)), "sizeMultiplier": step, "minTradeNum": min_qty,
            "minTradeUSDT": notional, "takerFeeRate": str(TAKER_FEE), "makerFeeRate": str(MAKER_FEE),
            "maxLever": str(TIERS[0][2])}
