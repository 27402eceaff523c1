"""Signed account and position endpoints of the Bybit facade (orders: :mod:`.orders`).

GET /v5/account/wallet-balance, /v5/account/info, /v5/account/fee-rate, /v5/user/query-api,
/v5/asset/coin/query-info, /v5/position/list; POST /v5/account/set-margin-mode,
/v5/position/set-leverage, /v5/position/switch-mode.

Rules (Bybit v5 unified trading account, where the simulator narrows them): the account margin mode
starts REGULAR_MARGIN (cross; Bybit "Set Margin Mode": "Default is regular margin mode") and orders
are accepted only in ISOLATED_MARGIN (the simulator accounts isolated margin only); setting it is
account-wide, answered ``reasons: []`` when done (also when already so: Bybit's docs give no "not
modified" answer for the unified account's mode, so the simulator's is the plain success), refused with 3400045
"Set margin mode failed" while a position or an open order exists; PORTFOLIO_MARGIN is refused.
Leverage: ``buyLeverage`` = ``sellLeverage`` (one-way), 1..the first tier's maximum (10001), the
same value again: 110043 "Set leverage has not been modified"; it applies to the next opening
fills. Position mode: one-way only (``mode`` 0: 110025 "Position mode is not modified"; 3: refused,
the simulator has no hedge mode). Positions: one row per traded symbol (flat: size "0", side "").
"""

from __future__ import annotations

from typing import Callable

from perpbot.devtools.bitget_sim.market import num
from perpbot.devtools.bybit_sim.errors import BybitError, bad
from perpbot.devtools.bybit_sim.info import MAKER_FEE, TAKER_FEE
from perpbot.devtools.bybit_sim.public import linear
from perpbot.devtools.bybit_sim.shapes import position_json, wallet_json
from perpbot.devtools.facade import bitget_params, coin_names, pick, route

PRIVATE: dict[tuple[str, str], Callable] = {}
MARGIN_MODES = {"ISOLATED_MARGIN": "isolated", "REGULAR_MARGIN": "crossed"}


def engine_of(sim, params: dict):
    """The engine of ``params["symbol"]``: 10001 when absent or not traded by this account."""
    return pick(sim.engines, (params.get("symbol") or "").upper(), bad("symbol is required"),
                BybitError(10001, "params error: symbol invalid"))


def engines_of(sim, params: dict) -> list:
    """The engine of ``params["symbol"]`` when given; else every traded symbol's when ``settleCoin``
    is USDT or ``baseCoin`` names one (Bybit: linear lists need symbol, baseCoin or settleCoin)."""
    if params.get("symbol"):
        return [engine_of(sim, params)]
    if (params.get("settleCoin") or "").upper() == "USDT":
        return list(sim.engines.values())
    base = (params.get("baseCoin") or "").upper()
    if base:
        return [e for s, e in sim.engines.items() if s[:-4] == base]
    raise bad("symbol, baseCoin or settleCoin is required for linear")


def tpsl_levels(e) -> dict:
    """The live position-wide TP / SL / trailing levels of ``e`` (strings) for the position row."""
    out = {}
    for p in e.plans.values():
        if p.status == "live" and p.plan_type == "pos_profit":
            out["take_profit"] = num(p.trigger_price)
        elif p.status == "live" and p.plan_type == "pos_loss":
            out["stop_loss"] = num(p.trigger_price)
    return out


@route(PRIVATE, "GET", "/v5/account/wallet-balance")
def wallet_balance(sim, params):
    if (params.get("accountType") or "").upper() != "UNIFIED":
        raise bad("accountType only support UNIFIED")
    return wallet_json(sim.wallet, list(sim.engines.values()), sim.market.now_ms)


@route(PRIVATE, "GET", "/v5/account/info")
def account_info(sim, params):
    mode = "ISOLATED_MARGIN" if sim.engine.margin_mode == "isolated" else "REGULAR_MARGIN"
    return {"unifiedMarginStatus": 6, "marginMode": mode, "isMasterTrader": False, "spotHedgingStatus": "OFF",
            "updatedTime": str(sim.market.now_ms), "dcpStatus": "OFF", "timeWindow": 10, "smpGroup": 0}


@route(PRIVATE, "GET", "/v5/user/query-api")
def query_api(sim, params):
    return {"id": "1", "note": "simulator", "apiKey": sim.api_key, "readOnly": 0, "secret": "", "permissions": {
        "ContractTrade": ["Order", "Position"], "Spot": [], "Wallet": [], "Options": [], "Derivatives": [],
        "CopyTrading": [], "BlockTrade": [], "Exchange": [], "NFT": []}, "ips": ["*"], "type": 1,
        "deadlineDay": 90, "expiredAt": "", "createdAt": "", "unified": 0, "uta": 1, "userID": 1,
        "inviterID": 0, "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "",
        "isMaster": True}


@route(PRIVATE, "GET", "/v5/asset/coin/query-info")
def coin_info(sim, params):
    """USDT and the traded base coins, no chains (ccxt's fetch_currencies, part of load_markets with keys)."""
    return {"rows": [{"name": c, "coin": c, "remainAmount": "0", "chains": []} for c in coin_names(sim)]}


@route(PRIVATE, "GET", "/v5/account/fee-rate")
def fee_rate(sim, params):
    linear(params)
    es = [engine_of(sim, params)] if params.get("symbol") else list(sim.engines.values())
    return {"category": "linear", "list": [{"symbol": e.symbol, "baseCoin": "", "takerFeeRate": num(TAKER_FEE),
                                            "makerFeeRate": num(MAKER_FEE)} for e in es]}


@route(PRIVATE, "GET", "/v5/position/list")
def position_list(sim, params):
    linear(params)
    return {"category": "linear", "nextPageCursor": "",
            "list": [position_json(e, tpsl_levels(e)) for e in engines_of(sim, params)]}


@route(PRIVATE, "POST", "/v5/account/set-margin-mode")
def set_margin_mode(sim, params):
    mode = MARGIN_MODES.get(params.get("setMarginMode") or "")
    if mode is None:
        if params.get("setMarginMode") == "PORTFOLIO_MARGIN":
            raise BybitError(3400045, "Set margin mode failed", result={"reasons": [{
                "reasonCode": "3400000", "reasonMsg": "the simulator has no portfolio margin"}]})
        raise bad("setMarginMode must be ISOLATED_MARGIN, REGULAR_MARGIN or PORTFOLIO_MARGIN")
    engines = list(sim.engines.values())
    if all(e.margin_mode == mode for e in engines):
        return {"reasons": []}
    if any(e.position is not None or any(o.open for o in e.orders.values()) for e in engines):
        raise BybitError(3400045, "Set margin mode failed", result={"reasons": [{
            "reasonCode": "3400070", "reasonMsg": "positions or open orders exist"}]})
    for e in engines:
        e.set_margin_mode(bitget_params(e, marginMode=mode))
    return {"reasons": []}


@route(PRIVATE, "POST", "/v5/position/set-leverage")
def set_leverage(sim, params):
    linear(params)
    e = engine_of(sim, params)
    buy, sell = params.get("buyLeverage"), params.get("sellLeverage")
    if buy in (None, "") or buy != sell:
        raise bad("buyLeverage must equal sellLeverage in one-way mode")
    try:
        lev = float(buy)
    except ValueError:
        raise bad("buyLeverage invalid") from None
    if not lev.is_integer() or not 1 <= lev <= e.max_lever:
        raise BybitError(10001, f"leverage invalid (the simulator takes whole numbers 1..{e.max_lever})")
    if int(lev) == e.leverage:
        raise BybitError(110043, "leverage not modified")
    e.set_leverage(bitget_params(e, leverage=str(int(lev))))
    return {}


@route(PRIVATE, "POST", "/v5/position/switch-mode")
def switch_mode(sim, params):
    linear(params)
    mode = str(params.get("mode"))
    if mode == "0":
        raise BybitError(110025, "Position mode is not modified")
    if mode == "3":
        raise bad("mode 3 (hedge mode): the simulator has no hedge mode (one-way only)")
    raise bad("mode must be 0 or 3")
