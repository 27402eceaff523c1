"""Private (signed) REST endpoints of the Bitget simulator: account, orders, positions, fills.

Handlers take ``(sim, params)`` and return the envelope's ``data``, in the shapes ccxt 4.5's
bitget client parses (fetch_balance, set_leverage, set_margin_mode, set_position_mode,
create_order, cancel_order, fetch_order, fetch_open_orders, fetch_canceled_and_closed_orders,
fetch_my_trades, fetch_positions / fetch_position, fetch_funding_history). Lists are newest
first; ``limit`` (default 100), ``startTime`` / ``endTime`` (ms, on cTime) and ``idLessThan``
(cursor: ids below it) filter them. Endpoint list (under ``/api/v2/mix/``):

account/account, account/accounts, account/bill, account/set-leverage, account/set-margin-mode,
account/set-position-mode, order/place-order, order/place-tpsl-order, order/place-plan-order
(refused: trigger / trailing plan orders are not simulated), order/cancel-order,
order/cancel-plan-order, order/orders-pending, order/orders-plan-pending, order/detail,
order/orders-history, order/orders-plan-history, order/fills, order/fill-history,
position/all-position, position/single-position.

Several traded symbols (``BitgetSim(tradable=...)``): an endpoint with a ``symbol`` acts on that
symbol's engine (40034 for a symbol the account does not trade); lists without a ``symbol``
(orders, plans, fills, bills, all-position) cover every traded symbol; account money is
account-wide (one wallet).
"""

from __future__ import annotations

from typing import Callable

from perpbot.devtools.bitget_sim.errors import SimError, bad_param
from perpbot.devtools.bitget_sim.market import num
from perpbot.devtools.bitget_sim.models import TPSL_TYPES
from perpbot.devtools.bitget_sim.routes import route

PRIVATE: dict[tuple[str, str], Callable] = {}


def _page(items: list, params: dict, key, time_of, max_limit: int = 100) -> tuple[list, str]:
    """Newest-first page of ``items`` (id-ordered) filtered by startTime/endTime/idLessThan/limit."""
    try:
        limit = min(int(params.get("limit") or 100), max_limit)
        start = int(params["startTime"]) if params.get("startTime") else None
        end = int(params["endTime"]) if params.get("endTime") else None
        below = int(params["idLessThan"]) if params.get("idLessThan") else None
    except ValueError:
        raise bad_param("limit / startTime / endTime / idLessThan must be integers") from None
    out = []
    for it in sorted(items, key=lambda x: int(key(x)), reverse=True):
        t = time_of(it)
        if (start is not None and t < start) or (end is not None and t > end):
            continue
        if below is not None and int(key(it)) >= below:
            continue
        out.append(it)
        if len(out) >= limit:
            break
    return out, (key(out[-1]) if out else "")


# ---- account ---------------------------------------------------------------------------------
def _engines(sim, params) -> list:
    """The engine of ``params["symbol"]`` when given (40034 if not traded), else every engine."""
    return [sim.engine_for(params)] if params.get("symbol") else list(sim.engines.values())


@route(PRIVATE, "GET", "v2/mix/account/account")
def account(sim, params):
    return sim.engine_for(params).account_row()


@route(PRIVATE, "GET", "v2/mix/account/accounts")
def accounts(sim, params):
    if (params.get("productType") or "").upper() != "USDT-FUTURES":
        return []
    return [sim.engine.account_row()]


@route(PRIVATE, "GET", "v2/mix/account/bill")
def bill(sim, params):
    every = sorted(((b["time"], k, e.symbol, b) for k, e in enumerate(sim.engines.values()) for b in e.bills),
                   key=lambda x: (x[0], x[1]))
    rows = [{"billId": str(1_200_000_000_000_000_000 + k), "symbol": sym, "amount": num(b["amount"]),
             "fee": "0", "feeByCoupon": "", "businessType": "contract_settle_fee", "coin": "USDT",
             "cTime": str(b["time"])} for k, (_t, _i, sym, b) in enumerate(every)]
    if params.get("symbol"):
        rows = [r for r in rows if r["symbol"] == params["symbol"].upper()]
    btype = params.get("businessType")
    if btype and btype != "contract_settle_fee":
        rows = []
    page, end_id = _page(rows, params, lambda r: r["billId"], lambda r: int(r["cTime"]))
    return {"bills": page, "endId": end_id}


@route(PRIVATE, "POST", "v2/mix/account/set-leverage")
def set_leverage(sim, params):
    return sim.engine_for(params).set_leverage(params)


@route(PRIVATE, "POST", "v2/mix/account/set-margin-mode")
def set_margin_mode(sim, params):
    return sim.engine_for(params).set_margin_mode(params)


@route(PRIVATE, "POST", "v2/mix/account/set-position-mode")
def set_position_mode(sim, params):
    return sim.engine.set_position_mode(params)


# ---- orders ----------------------------------------------------------------------------------
@route(PRIVATE, "POST", "v2/mix/order/place-order")
def place_order(sim, params):
    order = sim.engine_for(params).place_order(params)
    return {"orderId": order.order_id, "clientOid": order.client_oid}


@route(PRIVATE, "POST", "v2/mix/order/place-tpsl-order")
def place_tpsl_order(sim, params):
    plan = sim.engine_for(params).place_tpsl(params)
    return {"orderId": plan.order_id, "clientOid": plan.client_oid}


@route(PRIVATE, "POST", "v2/mix/order/place-plan-order")
def place_plan_order(sim, params):
    raise bad_param(f"planType={params.get('planType')!r}: trigger / trailing plan orders are not simulated "
                    "(use place-tpsl-order)")


@route(PRIVATE, "POST", "v2/mix/order/cancel-order")
def cancel_order(sim, params):
    order = sim.engine_for(params).cancel_order(params)
    return {"orderId": order.order_id, "clientOid": order.client_oid}


@route(PRIVATE, "POST", "v2/mix/order/cancel-plan-order")
def cancel_plan_order(sim, params):
    return sim.engine_for(params).cancel_plans(params)


def _orders(sim, params, want_open: bool):
    items = [o for e in _engines(sim, params) for o in e.orders.values() if o.open == want_open]
    if params.get("orderId"):
        items = [o for o in items if o.order_id == params["orderId"]]
    if params.get("clientOid"):
        items = [o for o in items if o.client_oid == params["clientOid"]]
    page, end_id = _page(items, params, lambda o: o.order_id, lambda o: o.c_time)
    return {"entrustedList": [o.to_bitget() for o in page], "endId": end_id}


@route(PRIVATE, "GET", "v2/mix/order/orders-pending")
def orders_pending(sim, params):
    return _orders(sim, params, True)


@route(PRIVATE, "GET", "v2/mix/order/orders-history")
def orders_history(sim, params):
    return _orders(sim, params, False)


def _plans(sim, params, want_live: bool):
    engines = _engines(sim, params)
    ptype = params.get("planType")
    if not ptype:
        raise SimError("40019", "Parameter planType cannot be empty")
    if ptype not in ("profit_loss", "normal_plan", "track_plan", *TPSL_TYPES):
        raise bad_param(f"planType={ptype!r} is not normal_plan, track_plan or profit_loss")
    items = [p for e in engines for p in e.plans.values() if (p.status == "live") == want_live
             and (p.plan_type == ptype or (ptype == "profit_loss" and p.plan_type in TPSL_TYPES))]
    if params.get("orderId"):
        items = [p for p in items if p.order_id == params["orderId"]]
    page, end_id = _page(items, params, lambda p: p.order_id, lambda p: p.c_time)
    return {"entrustedList": [p.to_bitget() for p in page], "endId": end_id}


@route(PRIVATE, "GET", "v2/mix/order/orders-plan-pending")
def orders_plan_pending(sim, params):
    return _plans(sim, params, True)


@route(PRIVATE, "GET", "v2/mix/order/orders-plan-history")
def orders_plan_history(sim, params):
    return _plans(sim, params, False)


@route(PRIVATE, "GET", "v2/mix/order/detail")
def detail(sim, params):
    engine = sim.engine_for(params)
    if not params.get("orderId") and not params.get("clientOid"):
        raise SimError("40019", "Parameter orderId or clientOid cannot be empty")
    return engine.find_order(params).to_bitget()


def _fills(sim, params):
    items = [f for e in _engines(sim, params) for f in e.fills]
    if params.get("orderId"):
        items = [f for f in items if f.order_id == params["orderId"]]
    page, end_id = _page(items, params, lambda f: f.trade_id, lambda f: f.c_time)
    return {"fillList": [f.to_bitget() for f in page], "endId": end_id}


@route(PRIVATE, "GET", "v2/mix/order/fills")
def fills(sim, params):
    return _fills(sim, params)


@route(PRIVATE, "GET", "v2/mix/order/fill-history")
def fill_history(sim, params):
    return _fills(sim, params)


# ---- positions -------------------------------------------------------------------------------
@route(PRIVATE, "GET", "v2/mix/position/all-position")
def all_position(sim, params):
    if (params.get("productType") or "").upper() != "USDT-FUTURES":
        return []
    return [e.position.to_bitget(e.market.last) for e in sim.engines.values() if e.position is not None]


@route(PRIVATE, "GET", "v2/mix/position/single-position")
def single_position(sim, params):
    e = sim.engine_for(params)
    return [] if e.position is None else [e.position.to_bitget(e.market.last)]
