"""OKX market rules of the simulator: the ``GET /api/v5/public/instruments`` row of SOL-USDT-SWAP,
the fee rates, and their translation into the contract row the shared Bitget engine reads
(:class:`~perpbot.devtools.bitget_sim.market.ReplayMarket` ``spec``).

Sources: SOL-USDT-SWAP as OKX's ``GET /api/v5/public/instruments?instType=SWAP`` lists it
(``ctVal`` 1 SOL, ``ctValCcy`` SOL, ``lotSz`` / ``minSz`` 0.01 contract, ``tickSz`` 0.01 USDT,
``lever`` 50; the row recorded in the project's venue tests, ``tests/fake_venues.py``): one
contract is 1 SOL, so ccxt's ``contractSize`` is 1 and perpbot's base-asset amounts are contracts
as they are. OKX has no minimum notional (the minimum is ``minSz``). Fees: OKX fee schedule,
regular user Lv1 (VIP 0), USDT-margined perpetual swaps: maker 0.020 %, taker 0.050 %. Leverage
tiers: the simulator keeps the engine's ONE tier table for liquidation
(:data:`perpbot.devtools.bitget_sim.market.TIERS`), capped at the instrument's ``lever`` 50.
"""

from __future__ import annotations

from perpbot.devtools.bitget_sim.market import CONTRACTS

TAKER_FEE = 0.0005
MAKER_FEE = 0.0002
MAX_LEVER = 50

#: engine symbol -> OKX instrument id (the simulator trades SOL-USDT-SWAP only)
INST_IDS = {"SOLUSDT": "SOL-USDT-SWAP"}
SYMBOLS = {v: k for k, v in INST_IDS.items()}


def instrument(symbol: str, list_time_ms: int = 1611916828000) -> dict:
    """The instruments row of ``symbol`` (a key of :data:`INST_IDS`); KeyError otherwise."""
    inst = INST_IDS[symbol]
    base = symbol[:-4]
    return {"instType": "SWAP", "instId": inst, "uly": f"{base}-USDT", "instFamily": f"{base}-USDT", "baseCcy": "",
            "quoteCcy": "", "settleCcy": "USDT", "ctVal": "1", "ctMult": "1", "ctValCcy": base, "ctType": "linear",
            "lotSz": "0.01", "tickSz": "0.01", "minSz": "0.01", "state": "live", "listTime": str(list_time_ms),
            "expTime": "", "lever": str(MAX_LEVER), "maxMktSz": "10000", "maxLmtSz": "100000", "maxTwapSz": "",
            "maxIcebergSz": "", "maxTriggerSz": "100000", "maxStopSz": "10000", "alias": "", "optType": "",
            "stk": "", "category": "1", "ruleType": "normal", "instIdCode": 10459, "openType": "",
            "auctionEndTime": "", "futureSettlement": False}


def engine_spec(symbol: str) -> dict:
    """OKX's rules of ``symbol`` as the Bitget-shaped contract row the engine reads: tick 0.01, lot
    and minimum 0.01 (contracts = SOL), no minimum notional, Lv1 fees, max leverage 50."""
    instrument(symbol)  # KeyError for a symbol the simulator has no OKX rules for
    return {**CONTRACTS[symbol], "pricePlace": "2", "priceEndStep": "1", "volumePlace": "2", "sizeMultiplier": "0.01",
            "minTradeNum": "0.01", "minTradeUSDT": "0", "takerFeeRate": str(TAKER_FEE),
            "makerFeeRate": str(MAKER_FEE), "maxLever": str(MAX_LEVER)}
