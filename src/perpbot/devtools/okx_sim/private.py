"""Private account endpoints of the OKX facade (orders: :mod:`.orders`).

GET /api/v5/account/balance, /account/positions, /account/config, /account/bills,
/account/bills-archive, /account/leverage-info, /asset/currencies; POST /account/set-leverage,
/account/set-position-mode.

Rules (OKX v5, where the simulator narrows them): net (one-way) position mode only: ``posMode``
net_mode is accepted (nothing to change), long_short_mode refused with 51000 (no hedge mode in the
simulator); the margin mode is the ``tdMode`` of each order (OKX has no per-symbol margin switch):
``set-leverage`` with ``mgnMode`` isolated sets the leverage (1..50, else 59102) of the next
opening fills (an open position keeps its leverage, as the engine accounts it); cross margin is
not simulated (51000). Bills (``type`` 8, funding fee): one row per funding settlement, ``balChg``
= ``posBalChg`` = the amount (negative when paid; the isolated margin pays it), newest first.
"""

from __future__ import annotations

from typing import Callable

from perpbot.devtools.bitget_sim.market import num
from perpbot.devtools.facade import bitget_params, coin_names
from perpbot.devtools.okx_sim.errors import OkxError, bad, empty
from perpbot.devtools.okx_sim.info import INST_IDS, MAX_LEVER
from perpbot.devtools.okx_sim.public import by_inst, int_param, limit_param, route
from perpbot.devtools.okx_sim.shapes import balance_json, position_json

PRIVATE: dict[tuple[str, str], Callable] = {}
BILL_BASE = 5_000_000_000


def engine_of(sim, params: dict):
    """The engine of ``params["instId"]``: 50014 when absent, 51001 when this account does not trade it."""
    return by_inst(sim.engines, params)


def engines_of(sim, params: dict) -> list:
    """The engines of ``params["instId"]`` (comma-separated) when given, else every traded symbol's."""
    if not params.get("instId"):
        return list(sim.engines.values())
    return [engine_of(sim, {"instId": i}) for i in str(params["instId"]).split(",")]


@route("GET", "account/balance", PRIVATE)
def balance(sim, params):
    return [balance_json(sim)]


@route("GET", "account/positions", PRIVATE)
def positions(sim, params):
    if params.get("instType") not in (None, "", "SWAP"):
        return []
    return [row for e in engines_of(sim, params) if (row := position_json(e)) is not None]


@route("GET", "account/config", PRIVATE)
def config(sim, params):
    return [{"uid": "44705892343619584", "mainUid": "44705892343619584", "acctLv": "2", "acctStpMode": "cancel_maker",
             "posMode": "net_mode", "autoLoan": False, "greeksType": "PA", "level": "Lv1", "levelTmp": "",
             "ctIsoMode": "automatic", "mgnIsoMode": "automatic", "spotOffsetType": "", "roleType": "0",
             "traderInsts": [], "spotRoleType": "0", "spotTraderInsts": [], "opAuth": "0", "kycLv": "1",
             "label": "perpbot-sim", "ip": "", "perm": "read_only,trade", "liquidationGear": "-1",
             "enableSpotBorrow": False, "spotBorrowAutoRepay": False, "type": "0", "settleCcy": "USDT",
             "settleCcyList": ["USDT"]}]


@route("POST", "account/set-position-mode", PRIVATE)
def set_position_mode(sim, params):
    mode = params.get("posMode")
    if not mode:
        raise empty("posMode")
    if mode != "net_mode":
        raise OkxError("51000", "Parameter posMode error (the simulator has no long_short_mode: net mode only)")
    return [{"posMode": mode}]


@route("POST", "account/set-leverage", PRIVATE)
def set_leverage(sim, params):
    mode = params.get("mgnMode")
    if not mode:
        raise empty("mgnMode")
    if mode != "isolated":
        raise OkxError("51000", "Parameter mgnMode error (the simulator accounts isolated margin only)")
    if params.get("posSide") not in (None, "", "net"):
        raise bad("posSide")
    e = engine_of(sim, params)
    lev = int_param(params, "lever")
    if lev is None:
        raise empty("lever")
    if not 1 <= lev <= MAX_LEVER:
        raise OkxError("59102", "Leverage exceeds the maximum leverage. Please adjust the leverage.")
    e.set_leverage(bitget_params(e, leverage=str(lev)))
    if e.margin_mode != "isolated" and e.position is None and not any(o.open for o in e.orders.values()):
        e.set_margin_mode(bitget_params(e, marginMode="isolated"))
    return [{"lever": str(lev), "mgnMode": mode, "instId": INST_IDS[e.symbol], "posSide": "net"}]


@route("GET", "account/leverage-info", PRIVATE)
def leverage_info(sim, params):
    return [{"instId": INST_IDS[e.symbol], "mgnMode": "isolated", "posSide": "net", "lever": str(e.leverage)}
            for e in engines_of(sim, params)]


@route("GET", "asset/currencies", PRIVATE)
def currencies(sim, params):
    """The funding account's coins (ccxt's fetch_currencies with keys outside demo mode): USDT and the base coins."""
    return [{"ccy": c, "name": c, "chain": f"{c}-{c}", "canDep": True, "canWd": True, "canInternal": True,
             "minWd": "1", "maxWd": "1000000", "minFee": "0", "maxFee": "0", "mainNet": True, "wdTickSz": "8",
             "logoLink": ""} for c in coin_names(sim)]


def bill_rows(sim) -> list[dict]:
    """Every funding bill of the account (type 8), oldest first; ``billId`` its rank."""
    rows = []
    for e in sim.engines.values():
        for b in e.bills:
            amt = num(b["amount"])
            rows.append({"instType": "SWAP", "instId": INST_IDS[e.symbol], "ccy": "USDT", "mgnMode": "isolated",
                         "type": "8", "subType": "173" if b["amount"] < 0 else "174", "balChg": amt, "posBalChg": amt,
                         "bal": "", "posBal": "", "sz": num(abs(b["qty"])), "px": num(b["mark"]), "pnl": "0",
                         "fee": "0", "execType": "", "from": "", "to": "", "notes": "", "tag": "",
                         "ts": str(b["time"])})
    rows.sort(key=lambda r: int(r["ts"]))
    return [{**r, "billId": str(BILL_BASE + k)} for k, r in enumerate(rows)]


@route("GET", "account/bills", PRIVATE)
@route("GET", "account/bills-archive", PRIVATE)
def bills(sim, params):
    rows = bill_rows(sim)
    if params.get("instId"):
        rows = [r for r in rows if r["instId"] == params["instId"]]
    if params.get("type"):
        rows = [r for r in rows if r["type"] == str(params["type"])]
    begin, end = int_param(params, "begin"), int_param(params, "end")
    after, before = int_param(params, "after"), int_param(params, "before")
    rows = [r for r in rows if (begin is None or int(r["ts"]) >= begin) and (end is None or int(r["ts"]) <= end)
            and (after is None or int(r["billId"]) < after) and (before is None or int(r["billId"]) > before)]
    return rows[::-1][:limit_param(params, 100, 100)]
