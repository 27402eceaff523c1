"""Signed order endpoints of the Binance facade: regular orders, conditional (algo) orders, trades.

POST/GET/DELETE /fapi/v1/order, GET /fapi/v1/openOrder, /fapi/v1/openOrders, /fapi/v1/allOrders,
DELETE /fapi/v1/allOpenOrders, GET /fapi/v1/userTrades; POST/GET/DELETE /fapi/v1/algoOrder,
GET /fapi/v1/openAlgoOrders, /fapi/v1/allAlgoOrders, DELETE /fapi/v1/algoOpenOrders.

Regular orders (``type`` MARKET or LIMIT; conditional types on /fapi/v1/order get Binance's
-4120 "use the Algo Order API") go to the engine's ``place_order``: a MARKET order fills at once
at the last close (+ slippage), taker fee; LIMIT with timeInForce GTC / IOC / FOK / GTX
(post-only) rests and is matched by the candles (rules: :mod:`perpbot.devtools.bitget_sim.matching`).
``newClientOrderId`` must match ``^[.A-Z:/a-z0-9_-]{1,36}$`` (-4015); a duplicate: -4116.

Conditional orders (algoType CONDITIONAL; STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET)
become the engine's TP/SL plans. Simulator rules: only reduce-only or closePosition conditional
orders are simulated (others: -1128), and Binance accepts them here only while a position is
open on the side they close (``side`` the closing side; else -2022 "ReduceOnly Order is
rejected."). STOP_MARKET -> a stop-loss plan closing ``quantity`` (closePosition=true: the whole
position, one per type and symbol: another one gets -4130), TAKE_PROFIT_MARKET -> a take-profit
plan, TRAILING_STOP_MARKET -> the trailing plan (``activatePrice``, default the last price;
``callbackRate`` percent in [0.1, 10]). A trigger on the wrong side of the last price: -2021.
Triggers compare with the trade candles whatever ``workingType`` (mark = last in the simulator)
and execute as market orders at the trigger level; the remaining conditional orders of the symbol
expire when its position closes (see :mod:`.shapes` for the statuses).
"""

from __future__ import annotations

import re
from typing import Callable

from perpbot.devtools.binance_sim.errors import BinanceError, invalid, missing
from perpbot.devtools.binance_sim.private import engine_of, engines_of
from perpbot.devtools.binance_sim.public import int_param, limit_param
from perpbot.devtools.binance_sim.shapes import LIQUIDATION_PREFIX, algo_json, order_json, trade_json
from perpbot.devtools.facade import bitget_params, route

ORDERS: dict[tuple[str, str], Callable] = {}
CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
CONDITIONAL = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
TIF = {"GTC": "gtc", "IOC": "ioc", "FOK": "fok", "GTX": "post_only"}
WORKING = {"MARK_PRICE": "mark_price", "CONTRACT_PRICE": "fill_price"}


def _side(params: dict) -> str:
    side = (params.get("side") or "").upper()
    if side not in ("BUY", "SELL"):
        raise missing("side") if not side else invalid("side")
    if params.get("positionSide") not in (None, "", "BOTH"):
        raise BinanceError(-4061, "Order's position side does not match user's setting.")
    return side.lower()


def _isolated(e) -> None:
    if e.margin_mode != "isolated":
        raise BinanceError(-1128, "Combination of optional parameters invalid. (the simulator accounts isolated "
                                  "margin only: POST /fapi/v1/marginType marginType=ISOLATED first)")


def _client_id(params: dict, key: str) -> str | None:
    cid = params.get(key)
    if cid in (None, ""):
        return None
    if not CLIENT_ID.match(cid):
        raise BinanceError(-4015, "Client order id is not valid.")
    return cid


def _plan_of(e, order_id: str):
    return next((p for p in e.plans.values() if p.exec_order_id == order_id), None)


def _order_out(sim, e, order) -> dict:
    return order_json(order, _plan_of(e, order.order_id), sim.user_cancelled)


def _algo_out(sim, e, plan) -> dict:
    return algo_json(plan, e.orders.get(plan.exec_order_id) if plan.exec_order_id else None, sim.user_cancelled)


# ---- regular orders -------------------------------------------------------------------------
@route(ORDERS, "POST", "/fapi/v1/order")
def new_order(sim, params):
    e = engine_of(sim, params)
    typ = (params.get("type") or "").upper()
    if not typ:
        raise missing("type")
    if typ in CONDITIONAL:
        raise BinanceError(-4120, "Order type not supported for this endpoint. Please use the Algo Order API "
                                  "endpoints instead.")
    if typ not in ("MARKET", "LIMIT"):
        raise BinanceError(-1116, "Invalid orderType.")
    side = _side(params)
    if not params.get("quantity"):
        raise missing("quantity")
    tif = (params.get("timeInForce") or ("GTC" if typ == "LIMIT" else "")).upper()
    if typ == "LIMIT" and tif not in TIF:
        raise invalid("timeInForce")
    if typ == "LIMIT" and not params.get("price"):
        raise missing("price")
    cid = _client_id(params, "newClientOrderId")
    _isolated(e)
    order = e.place_order(bitget_params(
        e, side=side, orderType=typ.lower(), size=params["quantity"], price=params.get("price") if typ == "LIMIT" else None,
        force=TIF.get(tif, "gtc"), reduceOnly="YES" if str(params.get("reduceOnly")).lower() == "true" else "NO",
        clientOid=cid, marginMode="isolated"))
    return _order_out(sim, e, order)


def _find_order(e, params: dict):
    oid, cid = params.get("orderId"), str(params.get("origClientOrderId") or "")
    if not oid and not cid:
        raise BinanceError(-1102, "Either orderId or origClientOrderId must be sent.")
    if not oid and cid.startswith(LIQUIDATION_PREFIX):
        cid = cid[len(LIQUIDATION_PREFIX):]
    order = e.orders.get(str(oid)) if oid else e.orders.get(e.by_client.get(cid, ""))
    if order is None:
        raise BinanceError(-2013, "Order does not exist.")
    return order


@route(ORDERS, "GET", "/fapi/v1/order")
def get_order(sim, params):
    e = engine_of(sim, params)
    return _order_out(sim, e, _find_order(e, params))


@route(ORDERS, "GET", "/fapi/v1/openOrder")
def get_open_order(sim, params):
    e = engine_of(sim, params)
    order = _find_order(e, params)
    if not order.open:
        raise BinanceError(-2013, "Order does not exist.")
    return _order_out(sim, e, order)


@route(ORDERS, "DELETE", "/fapi/v1/order")
def cancel_order(sim, params):
    e = engine_of(sim, params)
    try:
        order = _find_order(e, params)
    except BinanceError:
        raise BinanceError(-2011, "Unknown order sent.") from None
    if not order.open:
        raise BinanceError(-2011, "Unknown order sent.")
    sim.user_cancelled.add(order.order_id)
    e.cancel_order(bitget_params(e, orderId=order.order_id))
    return _order_out(sim, e, order)


@route(ORDERS, "DELETE", "/fapi/v1/allOpenOrders")
def cancel_all(sim, params):
    e = engine_of(sim, params)
    for o in [o for o in e.orders.values() if o.open]:
        sim.user_cancelled.add(o.order_id)
        e.cancel_order(bitget_params(e, orderId=o.order_id))
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


@route(ORDERS, "GET", "/fapi/v1/openOrders")
def open_orders(sim, params):
    return [_order_out(sim, e, o) for e in engines_of(sim, params) for o in e.orders.values() if o.open]


def _window(items: list, params: dict, t, key, default: int, most: int, from_key: str) -> list:
    """Ascending ``items`` filtered by startTime / endTime / ``from_key`` (id >=), first ``limit``
    after a start, else the last ``limit``."""
    start, end, first = int_param(params, "startTime"), int_param(params, "endTime"), int_param(params, from_key)
    limit = limit_param(params, default, most)
    out = [x for x in sorted(items, key=lambda x: int(key(x)))
           if (start is None or t(x) >= start) and (end is None or t(x) <= end) and (first is None or int(key(x)) >= first)]
    return out[:limit] if (start is not None or first is not None) else out[-limit:]


@route(ORDERS, "GET", "/fapi/v1/allOrders")
def all_orders(sim, params):
    e = engine_of(sim, params)
    rows = _window(list(e.orders.values()), params, lambda o: o.c_time, lambda o: o.order_id, 500, 1000, "orderId")
    return [_order_out(sim, e, o) for o in rows]


@route(ORDERS, "GET", "/fapi/v1/userTrades")
def user_trades(sim, params):
    e = engine_of(sim, params)
    fills = e.fills
    if params.get("orderId"):
        fills = [f for f in fills if f.order_id == str(params["orderId"])]
    rows = _window(fills, params, lambda f: f.c_time, lambda f: f.trade_id, 500, 1000, "fromId")
    return [trade_json(f, e.orders.get(f.order_id)) for f in rows]


# ---- conditional (algo) orders --------------------------------------------------------------
@route(ORDERS, "POST", "/fapi/v1/algoOrder")
def new_algo_order(sim, params):
    e = engine_of(sim, params)
    if (params.get("algoType") or "").upper() != "CONDITIONAL":
        raise invalid("algoType", "only CONDITIONAL")
    typ = (params.get("type") or "").upper()
    if typ not in ("STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"):
        raise BinanceError(-1116, "Invalid orderType. (the simulator takes STOP_MARKET, TAKE_PROFIT_MARKET and "
                                  "TRAILING_STOP_MARKET conditional orders)")
    side = _side(params)
    close_all = str(params.get("closePosition")).lower() == "true"
    reduce = str(params.get("reduceOnly")).lower() == "true"
    if close_all and reduce:
        raise BinanceError(-1106, "Parameter 'reduceOnly' sent when not required.")
    if close_all and typ == "TRAILING_STOP_MARKET":
        raise BinanceError(-1106, "Parameter 'closePosition' sent when not required.")
    if not (close_all or reduce):
        raise BinanceError(-1128, "Combination of optional parameters invalid. (the simulator takes reduce-only "
                                  "or closePosition conditional orders only)")
    cid = _client_id(params, "clientAlgoId")
    _isolated(e)
    pos = e.position
    if pos is None or side != ("sell" if pos.side > 0 else "buy"):
        raise BinanceError(-2022, "ReduceOnly Order is rejected.")
    qty = None
    if not close_all:
        if not params.get("quantity"):
            raise missing("quantity")
        qty = float(params["quantity"])
        if not qty > 0 or not e._on_grid(qty, e.market.lot):
            raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
    working = WORKING.get((params.get("workingType") or "CONTRACT_PRICE").upper())
    if working is None:
        raise invalid("workingType")
    kw = dict(triggerType=working, holdSide=pos.hold_side, clientOid=cid, size=params.get("quantity"))
    if typ == "TRAILING_STOP_MARKET":
        rate = float(params.get("callbackRate") or 0)
        if not 0.1 <= rate <= 10:
            raise invalid("callbackRate", "callbackRate must be in [0.1, 10] (percent)")
        plan = e.place_tpsl(bitget_params(e, planType="moving_plan", rangeRate=str(rate),
                                          triggerPrice=params.get("activatePrice") or str(e.market.last), **kw))
        return _algo_out(sim, e, plan)
    if not params.get("triggerPrice"):
        raise missing("triggerPrice")
    loss = typ == "STOP_MARKET"
    ptype = ("pos_loss" if loss else "pos_profit") if close_all else ("loss_plan" if loss else "profit_plan")
    if close_all and any(p.status == "live" and p.plan_type == ptype for p in e.plans.values()):
        raise BinanceError(-4130, "An open stop or take profit order with GTE and closePosition in the direction "
                                  "is existing.")
    plan = e.place_tpsl(bitget_params(e, planType=ptype, triggerPrice=params["triggerPrice"], **kw))
    return _algo_out(sim, e, plan)


def _find_plan(sim, params: dict):
    """(engine, plan) of ``algoId`` / ``clientAlgoId`` (in ``symbol``'s engine when given, else any)."""
    aid, cid = params.get("algoId"), params.get("clientAlgoId")
    if not aid and not cid:
        raise BinanceError(-1102, "Either algoId or clientAlgoId must be sent.")
    for e in engines_of(sim, params):
        plan = e.plans.get(str(aid)) if aid else e.plans.get(e.by_client.get(cid, ""))
        if plan is not None:
            return e, plan
    raise BinanceError(-2013, "Order does not exist.")


@route(ORDERS, "GET", "/fapi/v1/algoOrder")
def get_algo_order(sim, params):
    e, plan = _find_plan(sim, params)
    return _algo_out(sim, e, plan)


def _cancel_plan(sim, e, plan) -> None:
    sim.user_cancelled.add(plan.order_id)
    e.cancel_plans(bitget_params(e, orderIdList=[{"orderId": plan.order_id}]))


@route(ORDERS, "DELETE", "/fapi/v1/algoOrder")
def cancel_algo_order(sim, params):
    try:
        e, plan = _find_plan(sim, params)
    except BinanceError as exc:
        if exc.code != -2013:
            raise
        raise BinanceError(-2011, "Unknown order sent.") from None
    if plan.status != "live":
        raise BinanceError(-2011, "Unknown order sent.")
    _cancel_plan(sim, e, plan)
    return {"algoId": int(plan.order_id), "clientAlgoId": plan.client_oid, "code": "200", "msg": "success"}


@route(ORDERS, "DELETE", "/fapi/v1/algoOpenOrders")
def cancel_all_algo(sim, params):
    e = engine_of(sim, params)
    for plan in [p for p in e.plans.values() if p.status == "live"]:
        _cancel_plan(sim, e, plan)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


@route(ORDERS, "GET", "/fapi/v1/openAlgoOrders")
def open_algo_orders(sim, params):
    rows = [(e, p) for e in engines_of(sim, params) for p in e.plans.values() if p.status == "live"]
    if params.get("algoId"):
        rows = [(e, p) for e, p in rows if p.order_id == str(params["algoId"])]
    return [_algo_out(sim, e, p) for e, p in rows]


@route(ORDERS, "GET", "/fapi/v1/allAlgoOrders")
def all_algo_orders(sim, params):
    e = engine_of(sim, params)
    rows = _window(list(e.plans.values()), params, lambda p: p.c_time, lambda p: p.order_id, 500, 1000, "algoId")
    return [_algo_out(sim, e, p) for p in rows]
