"""Order endpoints of the OKX facade: orders, algo (TP/SL) orders, fills.

POST /api/v5/trade/order, /trade/batch-orders, /trade/order-algo, /trade/cancel-order,
/trade/cancel-batch-orders, /trade/cancel-algos; GET /trade/order, /trade/order-algo,
/trade/orders-pending, /trade/orders-algo-pending, /trade/orders-history,
/trade/orders-algo-history, /trade/fills, /trade/fills-history.

Orders (``ordType`` market, limit, post_only, ioc, fok) go to the engine's ``place_order``: a market
order fills at once at the last close (+ slippage), taker fee. ``tdMode`` must be isolated (cross
is not simulated: 51000), ``posSide`` net or absent; ``clOrdId`` letters and digits, 1-32 (else
51000), unique among the account's orders and algo orders (51016). ``attachAlgoOrds`` (one
element; market execution ``slOrdPx`` / ``tpOrdPx`` -1 only) presets the entry's stop-loss /
take-profit: they must lie on the right side of the last price (51277-51280) and become, when it
fills, one algo order (``oco`` with both, else ``conditional``) on the whole position.

Algo orders: ``ordType`` conditional with ONE of slTriggerPx / tpTriggerPx, market execution,
``reduceOnly`` true and ``sz`` (closeFraction, oco, trigger, move_order_stop: 51000, not
simulated); accepted only while a position is open on the side they close (51169). They trigger on
the trade candles whatever the trigger price type (mark = last in the simulator) and execute as
market orders at their level; every TP/SL algo order of the symbol is cancelled when its position
closes. ``orders-algo-pending`` needs ``ordType`` (conditional, oco, or the pair
"conditional,oco"). Shapes and states: :mod:`.shapes`.
"""

from __future__ import annotations

import re
from typing import Callable

from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.facade import bitget_params
from perpbot.devtools.okx_sim.errors import OkxError, bad, empty, failed
from perpbot.devtools.okx_sim.private import engine_of, engines_of
from perpbot.devtools.okx_sim.public import int_param, limit_param, route
from perpbot.devtools.okx_sim.shapes import algo_json, algos, fill_json, order_json

ORDERS: dict[tuple[str, str], Callable] = {}
CLIENT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
TYPES = {"market": ("market", "gtc"), "limit": ("limit", "gtc"), "post_only": ("limit", "post_only"),
         "ioc": ("limit", "ioc"), "fok": ("limit", "fok")}
PX_TYPES = ("last", "mark", "index")


def _gone() -> OkxError:
    return OkxError("51400", "Cancellation failed as the order does not exist.")


def _true(v) -> bool:
    return v is True or str(v).lower() == "true"


def _client_id(sim, e, params: dict, key: str) -> str | None:
    cid = params.get(key)
    if cid in (None, ""):
        return None
    if not CLIENT_ID.match(str(cid)):
        raise bad(key)
    if cid in e.by_client or any(m.get("clOrdId") == cid for m in sim.algo_meta.values()):
        raise OkxError("51016", "Duplicated clOrdId")
    return str(cid)


def _levels(exc: SimError, short: bool) -> OkxError | SimError:
    """The engine's take-profit side error (40915) is OKX's 51277 for a short position."""
    if exc.code == "40915" and short:
        return OkxError("51277", "TP trigger price cannot be higher than the last price")
    return exc


def _common(params: dict) -> str:
    side = params.get("side")
    if not side:
        raise empty("side")
    if side not in ("buy", "sell"):
        raise bad("side")
    td = params.get("tdMode")
    if not td:
        raise empty("tdMode")
    if td != "isolated":
        raise OkxError("51000", "Parameter tdMode error (the simulator accounts isolated margin only)")
    if params.get("posSide") not in (None, "", "net"):
        raise bad("posSide")
    if not params.get("sz"):
        raise empty("sz")
    return side


def _attached(params: dict) -> tuple[str | None, str | None, dict]:
    rows = params.get("attachAlgoOrds") or []
    if not isinstance(rows, list) or len(rows) > 1:
        raise OkxError("51000", "Parameter attachAlgoOrds error (the simulator takes one element)")
    a = rows[0] if rows else {}
    types = {}
    for k in ("sl", "tp"):
        if a.get(f"{k}TriggerPx") not in (None, ""):
            if str(a.get(f"{k}OrdPx", "-1")) != "-1":
                raise OkxError("51000", f"Parameter {k}OrdPx error (the simulator executes TP/SL at market: -1)")
            types[k] = a.get(f"{k}TriggerPxType") or "last"
            if types[k] not in PX_TYPES:
                raise bad(f"{k}TriggerPxType")
    return a.get("slTriggerPx") or None, a.get("tpTriggerPx") or None, types


def place(sim, params: dict) -> dict:
    """One order of ``trade/order`` / ``batch-orders``; its answer row (or :class:`OkxError` ``failed``)."""
    cl = params.get("clOrdId") or ""
    try:
        e = engine_of(sim, params)
        side = _common(params)
        typ = params.get("ordType")
        if typ not in TYPES:
            raise bad("ordType")
        otype, force = TYPES[typ]
        if otype == "limit" and not params.get("px"):
            raise empty("px")
        cid = _client_id(sim, e, params, "clOrdId")
        sl, tp, types = _attached(params)
        try:
            order = e.place_order(bitget_params(
                e, side=side, orderType=otype, size=str(params["sz"]), price=params.get("px") if otype == "limit" else None,
                force=force, reduceOnly="YES" if _true(params.get("reduceOnly")) else "NO", clientOid=cid,
                marginMode="isolated", presetStopLossPrice=sl, presetStopSurplusPrice=tp))
        except SimError as exc:
            raise _levels(exc, side == "sell") from None
    except (OkxError, SimError) as exc:
        raise failed(exc, clOrdId=cl, ordId="", ts=str(sim.server_clock_ms())) from None
    sim.attach_types[order.order_id] = types
    return {"clOrdId": cl, "ordId": order.order_id, "tag": "", "ts": str(sim.server_clock_ms()), "sCode": "0",
            "sMsg": "Order placed"}


@route("POST", "trade/order", ORDERS)
def new_order(sim, params):
    return [place(sim, params)]


@route("POST", "trade/batch-orders", ORDERS)
def batch_orders(sim, params):
    if not isinstance(params, list) or not params:
        raise OkxError("51000", "Parameter error: a list of orders")
    rows, refused = [], 0
    for p in params:
        try:
            rows.append(place(sim, p))
        except OkxError as exc:
            rows.append(exc.data[0])
            refused += 1
    if refused:
        code, msg = ("1", "All operations failed") if refused == len(rows) else ("2", "Bulk operation partially succeeded")
        raise OkxError(code, msg, data=rows)
    return rows


@route("POST", "trade/order-algo", ORDERS)
def new_algo(sim, params):
    cl, acl = params.get("clOrdId") or "", params.get("algoClOrdId") or ""
    row = {"algoId": "", "clOrdId": cl, "algoClOrdId": acl}
    try:
        e = engine_of(sim, params)
        side = _common(params)
        if params.get("ordType") != "conditional":
            raise OkxError("51000", "Parameter ordType error (the simulator takes conditional algo orders only)")
        if not _true(params.get("reduceOnly")):
            raise OkxError("51000", "Parameter reduceOnly error (the simulator takes reduce-only TP/SL only)")
        kinds = [k for k in ("sl", "tp") if params.get(f"{k}TriggerPx") not in (None, "")]
        if len(kinds) != 1:
            raise OkxError("51000", "Parameter slTriggerPx / tpTriggerPx error (one of them: the simulator takes "
                                    "one-sided conditional orders)")
        k = kinds[0]
        if str(params.get(f"{k}OrdPx", "-1")) != "-1":
            raise OkxError("51000", f"Parameter {k}OrdPx error (the simulator executes TP/SL at market: -1)")
        px_type = params.get(f"{k}TriggerPxType") or "last"
        if px_type not in PX_TYPES:
            raise bad(f"{k}TriggerPxType")
        cid, acid = _client_id(sim, e, params, "clOrdId"), _client_id(sim, e, params, "algoClOrdId")
        pos = e.position
        if pos is None or side != ("sell" if pos.side > 0 else "buy"):
            raise OkxError("51169", "Order placement failed because you don't have any positions in this direction "
                                    "for this contract.")
        try:
            plan = e.place_tpsl(bitget_params(e, planType="loss_plan" if k == "sl" else "profit_plan",
                                              triggerPrice=str(params[f"{k}TriggerPx"]), holdSide=pos.hold_side,
                                              size=str(params["sz"]), clientOid=acid, triggerType="mark_price"))
        except SimError as exc:
            raise _levels(exc, pos.side < 0) from None
    except (OkxError, SimError) as exc:
        raise failed(exc, **row) from None
    sim.algo_meta[plan.order_id] = {"clOrdId": cid or "", "algoClOrdId": acid or "", "pxType": {k: px_type}}
    return [{**row, "algoId": plan.order_id, "sCode": "0", "sMsg": "Order placed", "tag": ""}]


def find_order(sim, e, params: dict):
    """The engine order of ``ordId`` / ``clOrdId`` (also the order a triggered algo order with that
    ``clOrdId`` placed); 51003 without either, 51603 when unknown."""
    oid, cid = params.get("ordId"), params.get("clOrdId")
    if not oid and not cid:
        raise OkxError("51003", "Either client order ID or order ID is required.")
    order = e.orders.get(str(oid)) if oid else e.orders.get(e.by_client.get(str(cid), ""))
    if order is None and cid and not oid:
        plan = next((p for p in e.plans.values() if sim.algo_meta.get(p.order_id, {}).get("clOrdId") == cid
                     and p.exec_order_id), None)
        order = e.orders.get(plan.exec_order_id) if plan is not None else None
    if order is None:
        raise OkxError("51603", "Order does not exist")
    return order


@route("GET", "trade/order", ORDERS)
def get_order(sim, params):
    e = engine_of(sim, params)
    return [order_json(sim, e, find_order(sim, e, params))]


def _cancel(sim, p: dict) -> dict:
    row = {"clOrdId": p.get("clOrdId") or "", "ordId": p.get("ordId") or "", "ts": str(sim.server_clock_ms())}
    try:
        e = engine_of(sim, p)
        try:
            order = find_order(sim, e, p)
        except OkxError as exc:
            raise (_gone() if exc.code == "51603" else exc) from None
        if not order.open:
            raise OkxError(*(("51401", "Cancellation failed as the order is already canceled.")
                             if order.status == "canceled" else
                             ("51402", "Cancellation failed as the order is already completed.")))
        e.cancel_order(bitget_params(e, orderId=order.order_id))
    except (OkxError, SimError) as exc:
        raise failed(exc, **row) from None
    return {**row, "ordId": order.order_id, "clOrdId": order.client_oid, "sCode": "0", "sMsg": ""}


@route("POST", "trade/cancel-order", ORDERS)
def cancel_order(sim, params):
    return [_cancel(sim, params)]


def _each(sim, params, fn) -> list:
    if not isinstance(params, list) or not params:
        raise OkxError("51000", "Parameter error: a list of orders")
    rows, refused = [], 0
    for p in params:
        try:
            rows.append(fn(sim, p))
        except OkxError as exc:
            rows.append(exc.data[0] if exc.data else {"sCode": exc.code, "sMsg": exc.msg})
            refused += 1
    if refused:
        raise OkxError("1" if refused == len(rows) else "2", "All operations failed" if refused == len(rows) else
                       "Bulk operation partially succeeded", data=rows)
    return rows


@route("POST", "trade/cancel-batch-orders", ORDERS)
def cancel_batch(sim, params):
    return _each(sim, params, _cancel)


def find_algo(sim, params: dict):
    """(engine, algo order) of ``algoId`` / ``algoClOrdId`` (in ``instId``'s engine when given)."""
    aid, acid = params.get("algoId"), params.get("algoClOrdId")
    if not aid and not acid:
        raise OkxError("51000", "Parameter algoId error (algoId or algoClOrdId is required)")
    for e in engines_of(sim, params):
        for a in algos(sim, e):
            if (aid and a.algo_id == str(aid)) or (not aid and acid and a.meta.get("algoClOrdId") == acid):
                return e, a
    raise OkxError("51603", "Order does not exist")


def _cancel_algo(sim, p: dict) -> dict:
    row = {"algoId": p.get("algoId") or "", "algoClOrdId": p.get("algoClOrdId") or ""}
    try:
        if not p.get("instId"):
            raise empty("instId")
        try:
            e, a = find_algo(sim, p)
        except OkxError as exc:
            raise (_gone() if exc.code == "51603" else exc) from None
        if a.state != "live":
            raise OkxError("51400", "Cancellation failed as the order does not exist.")
        ids = [{"orderId": leg.order_id} for leg in a.legs if leg.status == "live"]
        e.cancel_plans(bitget_params(e, orderIdList=ids))
    except (OkxError, SimError) as exc:
        raise failed(exc, **row) from None
    return {**row, "algoId": a.algo_id, "algoClOrdId": a.meta.get("algoClOrdId", ""), "sCode": "0", "sMsg": ""}


@route("POST", "trade/cancel-algos", ORDERS)
def cancel_algos(sim, params):
    return _each(sim, params, _cancel_algo)


@route("GET", "trade/order-algo", ORDERS)
def get_algo(sim, params):
    e, a = find_algo(sim, params)
    return [algo_json(sim, e, a)]


def _algo_rows(sim, params, live: bool) -> list:
    types = str(params.get("ordType") or "")
    if not types:
        raise empty("ordType")
    wanted = set(types.split(","))
    if len(wanted) > 1 and wanted != {"conditional", "oco"}:
        raise bad("ordType")
    rows = [(e, a) for e in engines_of(sim, params) for a in algos(sim, e)
            if a.ord_type in wanted and (a.state == "live") == live
            and (not params.get("algoId") or a.algo_id == params["algoId"])]
    rows.sort(key=lambda x: int(x[1].algo_id), reverse=True)
    return [algo_json(sim, e, a) for e, a in rows][:limit_param(params, 100, 100)]


@route("GET", "trade/orders-algo-pending", ORDERS)
def algo_pending(sim, params):
    return _algo_rows(sim, params, True)


@route("GET", "trade/orders-algo-history", ORDERS)
def algo_history(sim, params):
    return _algo_rows(sim, params, False)


def _orders(sim, params, open_: bool) -> list:
    rows = [(e, o) for e in engines_of(sim, params) for o in e.orders.values() if o.open == open_]
    rows.sort(key=lambda x: int(x[1].order_id), reverse=True)
    return [order_json(sim, e, o) for e, o in rows][:limit_param(params, 100, 100)]


@route("GET", "trade/orders-pending", ORDERS)
def orders_pending(sim, params):
    return _orders(sim, params, True)


@route("GET", "trade/orders-history", ORDERS)
@route("GET", "trade/orders-history-archive", ORDERS)
def orders_history(sim, params):
    return _orders(sim, params, False)


@route("GET", "trade/fills", ORDERS)
@route("GET", "trade/fills-history", ORDERS)
def fills(sim, params):
    begin, end = int_param(params, "begin"), int_param(params, "end")
    after, before = int_param(params, "after"), int_param(params, "before")
    rows = []
    for e in engines_of(sim, params):
        for f in e.fills:
            if (params.get("ordId") and f.order_id != params["ordId"]) or (begin is not None and f.c_time < begin) \
                    or (end is not None and f.c_time > end) or (after is not None and int(f.trade_id) >= after) \
                    or (before is not None and int(f.trade_id) <= before):
                continue
            order = e.orders.get(f.order_id)
            cl = order_json(sim, e, order)["clOrdId"] if order is not None else ""
            rows.append(fill_json(e, f, order, cl))
    rows.sort(key=lambda r: (int(r["ts"]), int(r["tradeId"])), reverse=True)
    return rows[:limit_param(params, 100, 100)]
