"""Signed ``/fapi`` account endpoints of the Binance facade (orders: :mod:`.orders`).

GET /fapi/v2/balance, /fapi/v3/balance, /fapi/v2/account, /fapi/v3/account, /fapi/v2/positionRisk,
/fapi/v3/positionRisk, /fapi/v1/leverageBracket, /fapi/v1/symbolConfig, /fapi/v1/commissionRate,
/fapi/v1/multiAssetsMargin, /fapi/v1/positionSide/dual, /fapi/v1/income, /sapi/v1/capital/config/getall,
/sapi/v1/margin/allPairs;
POST /fapi/v1/leverage,
/fapi/v1/marginType, /fapi/v1/positionSide/dual.

Rules (Binance USDⓈ-M, where the simulator narrows them): one-way position mode only
(``dualSidePosition`` false; asking for true is refused with -1130, the simulator has no hedge
mode; asking for false answers Binance's -4059 "No need to change position side.");
isolated margin is the only mode orders accept, but a symbol starts CROSSED as on Binance, so a
bot sets ``marginType=ISOLATED`` first (the same type again: -4046 "No need to change margin
type.", ccxt's MarginModeAlreadySet; with a position: -4048; with open orders: -4047);
leverage 1..the first bracket's (else -4028), applied to the next opening fills (the open
position keeps its leverage, as the engine accounts it). Income rows: FUNDING_FEE (negative
when paid), COMMISSION (negative: each fill's fee) and REALIZED_PNL (gross PnL of each closing
fill), ascending by time; ``tranId`` is the row's rank in that history.
"""

from __future__ import annotations

from typing import Callable

from perpbot.devtools.binance_sim.errors import BinanceError, invalid, missing
from perpbot.devtools.binance_sim.info import MAKER_FEE, TAKER_FEE, leverage_brackets
from perpbot.devtools.binance_sim.public import int_param, limit_param
from perpbot.devtools.binance_sim.shapes import account_json, position_json
from perpbot.devtools.bitget_sim.market import num
from perpbot.devtools.facade import bitget_params, coin_names, pick, route

PRIVATE: dict[tuple[str, str], Callable] = {}
INCOME_BASE = 3_000_000_000


def engine_of(sim, params: dict):
    """The engine of ``params["symbol"]``: -1102 when absent, -1121 when this account does not trade it."""
    return pick(sim.engines, (params.get("symbol") or "").upper(), missing("symbol"),
                BinanceError(-1121, "Invalid symbol."))


def engines_of(sim, params: dict) -> list:
    """The engine of ``params["symbol"]`` when given, else every traded symbol's."""
    return [engine_of(sim, params)] if params.get("symbol") else list(sim.engines.values())


@route(PRIVATE, "GET", "/fapi/v2/balance")
@route(PRIVATE, "GET", "/fapi/v3/balance")
def balance(sim, params):
    a = account_json(sim.wallet, list(sim.engines.values()))["assets"][0]
    return [{"accountAlias": "SimAcct", "asset": "USDT", "balance": a["walletBalance"],
             "crossWalletBalance": a["crossWalletBalance"], "crossUnPnl": "0",
             "availableBalance": a["availableBalance"], "maxWithdrawAmount": a["maxWithdrawAmount"],
             "marginAvailable": True, "updateTime": a["updateTime"]}]


@route(PRIVATE, "GET", "/fapi/v2/account")
@route(PRIVATE, "GET", "/fapi/v3/account")
def account(sim, params):
    return account_json(sim.wallet, list(sim.engines.values()))


def _positions(sim, params, v2: bool):
    out = []
    for e in engines_of(sim, params):
        if e.position is None and not v2 and not any(o.open for o in e.orders.values()):
            continue  # v3 lists only symbols with a position or open orders
        out.append(position_json(e.position, e.symbol, e.market.last, e.leverage, e.frozen(), v2))
    return out


@route(PRIVATE, "GET", "/fapi/v2/positionRisk")
def position_risk_v2(sim, params):
    return _positions(sim, params, True)


@route(PRIVATE, "GET", "/fapi/v3/positionRisk")
def position_risk_v3(sim, params):
    return _positions(sim, params, False)


@route(PRIVATE, "GET", "/fapi/v1/leverageBracket")
def leverage_bracket(sim, params):
    return [leverage_brackets(e.symbol) for e in engines_of(sim, params)]


def _max_notional(e) -> str:
    """The largest notional cap whose bracket allows the symbol's leverage (USDT)."""
    caps = [b["notionalCap"] for b in leverage_brackets(e.symbol)["brackets"] if b["initialLeverage"] >= e.leverage]
    return num(caps[-1]) if caps else "0"


@route(PRIVATE, "GET", "/fapi/v1/symbolConfig")
def symbol_config(sim, params):
    return [{"symbol": e.symbol, "marginType": "ISOLATED" if e.margin_mode == "isolated" else "CROSSED",
             "isAutoAddMargin": False, "leverage": e.leverage, "maxNotionalValue": _max_notional(e)}
            for e in engines_of(sim, params)]


@route(PRIVATE, "GET", "/fapi/v1/commissionRate")
def commission_rate(sim, params):
    e = engine_of(sim, params)
    return {"symbol": e.symbol, "makerCommissionRate": num(MAKER_FEE), "takerCommissionRate": num(TAKER_FEE)}


@route(PRIVATE, "GET", "/sapi/v1/capital/config/getall")
def coins(sim, params):
    """The spot wallet's coin list (ccxt's fetch_currencies, part of load_markets with a key):
    USDT and the traded base coins, no networks."""
    return [{"coin": c, "name": c, "depositAllEnable": True, "withdrawAllEnable": True, "free": "0", "locked": "0",
             "freeze": "0", "withdrawing": "0", "ipoing": "0", "ipoable": "0", "storage": "0", "isLegalMoney": False,
             "trading": True, "networkList": []} for c in coin_names(sim)]


@route(PRIVATE, "GET", "/sapi/v1/margin/allPairs")
def margin_pairs(sim, params):
    """No spot margin pairs (ccxt's fetch_currencies asks for them)."""
    return []


@route(PRIVATE, "GET", "/fapi/v1/multiAssetsMargin")
def multi_assets(sim, params):
    return {"multiAssetsMargin": False}


@route(PRIVATE, "POST", "/fapi/v1/leverage")
def set_leverage(sim, params):
    e = engine_of(sim, params)
    lev = int_param(params, "leverage")
    if lev is None:
        raise missing("leverage")
    if not 1 <= lev <= e.max_lever:
        raise BinanceError(-4028, f"Leverage {lev} is not valid")
    e.set_leverage(bitget_params(e, leverage=str(lev)))
    return {"leverage": lev, "maxNotionalValue": _max_notional(e), "symbol": e.symbol}


@route(PRIVATE, "POST", "/fapi/v1/marginType")
def set_margin_type(sim, params):
    e = engine_of(sim, params)
    mt = (params.get("marginType") or "").upper()
    if mt not in ("ISOLATED", "CROSSED"):
        raise invalid("marginType")
    mode = "isolated" if mt == "ISOLATED" else "crossed"
    if e.margin_mode == mode:
        raise BinanceError(-4046, "No need to change margin type.")
    if e.position is not None:
        raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
    if any(o.open for o in e.orders.values()):
        raise BinanceError(-4047, "Margin type cannot be changed if there exists open orders.")
    e.set_margin_mode(bitget_params(e, marginMode=mode))
    return {"code": 200, "msg": "success"}


@route(PRIVATE, "GET", "/fapi/v1/positionSide/dual")
def get_position_mode(sim, params):
    return {"dualSidePosition": False}


@route(PRIVATE, "POST", "/fapi/v1/positionSide/dual")
def set_position_mode(sim, params):
    dual = (params.get("dualSidePosition") or "").lower()
    if dual == "false":
        raise BinanceError(-4059, "No need to change position side.")
    if dual == "true":
        raise invalid("dualSidePosition", "the simulator has no hedge mode (one-way only)")
    raise missing("dualSidePosition")


def income_rows(sim) -> list[dict]:
    """Every income row of the account (FUNDING_FEE, COMMISSION, REALIZED_PNL), ascending."""
    rows = []
    for e in sim.engines.values():
        for b in e.bills:
            rows.append((b["time"], 0, {"symbol": e.symbol, "incomeType": "FUNDING_FEE", "income": num(b["amount"]),
                                        "asset": "USDT", "info": "FUNDING_FEE", "time": b["time"], "tradeId": ""}))
        for f in e.fills:
            if f.profit != 0.0 or f.trade_side == "close":
                rows.append((f.c_time, 1, {"symbol": e.symbol, "incomeType": "REALIZED_PNL", "income": num(f.profit),
                                           "asset": "USDT", "info": "REALIZED_PNL", "time": f.c_time,
                                           "tradeId": f.trade_id}))
            rows.append((f.c_time, 2, {"symbol": e.symbol, "incomeType": "COMMISSION", "income": num(-f.fee),
                                       "asset": "USDT", "info": "COMMISSION", "time": f.c_time, "tradeId": f.trade_id}))
    rows.sort(key=lambda r: (r[0], r[1], r[2]["tradeId"]))
    return [{**r, "tranId": INCOME_BASE + k} for k, (_t, _o, r) in enumerate(rows)]


@route(PRIVATE, "GET", "/fapi/v1/income")
def income(sim, params):
    rows = income_rows(sim)
    if params.get("symbol"):
        sym = engine_of(sim, params).symbol
        rows = [r for r in rows if r["symbol"] == sym]
    kind = params.get("incomeType")
    if kind:
        rows = [r for r in rows if r["incomeType"] == kind]
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    limit = limit_param(params, 100, 1000)
    rows = [r for r in rows if (start is None or r["time"] >= start) and (end is None or r["time"] <= end)]
    return rows[:limit] if start is not None else rows[-limit:]
