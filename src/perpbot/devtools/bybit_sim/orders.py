"""Signed order endpoints of the Bybit facade: POST /v5/order/create, /v5/order/cancel,
/v5/order/cancel-all; GET /v5/order/realtime, /v5/order/history, /v5/execution/list.

Orders (``category`` linear, one-way ``positionIdx`` 0; the account must be in ISOLATED_MARGIN):

* ``Market`` / ``Limit`` (timeInForce GTC, IOC, FOK, PostOnly) go to the engine's ``place_order``: a
  market order fills at once at the last close (+ slippage), taker fee; limit orders rest and are
  matched by the candles (:mod:`perpbot.devtools.bitget_sim.matching`). ``takeProfit`` / ``stopLoss``
  attach position-wide TP/SL (``tpslMode`` Full, Bybit's default; Partial / limit TP/SL are not
  simulated: 10001), which become ``TakeProfit`` / ``StopLoss`` orders when the entry fills (a new
  pair replaces the old one). They are refused with ``reduceOnly`` (Bybit "Place Order": "When
  reduceOnly is true, take profit/stop loss cannot be set").
* ``triggerPrice`` + ``triggerDirection`` (1 rises to it, 2 falls to it) make a conditional order;
  the simulator takes only reduce-only market ones (10001 otherwise), accepted while a position is
  open on the side they close (110017 otherwise): closing a long, "falls to" is a stop-loss and
  "rises to" a take-profit (the other way round for a short). A trigger already reached: 110092 /
  110093. ``triggerBy`` LastPrice (default) / MarkPrice / IndexPrice: all the last price here.
* ``orderLinkId`` ``^[A-Za-z0-9_-]{1,36}$`` (10001), unique (110072 "OrderLinkedID is duplicate").
* cancel: an open order or an untriggered conditional / TP/SL order by ``orderId`` / ``orderLinkId``,
  else 110001. Cancelling one of the TP/SL pair attached by an entry cancels its partner too (Bybit
  "Set Trading Stop": only after a one-sided change do the paired tp/sl orders "lose binding
  relationship", so that cancelling one through its id cancels only that one).

Lists (newest first): realtime = open orders (``openOnly`` 0; 1: the closed ones; ignored with
``orderId`` / ``orderLinkId``), ``orderFilter`` Order (ordinary orders) / StopOrder (conditional and
TP/SL orders) / none (all), ``limit`` [1, 50] default 20; history: every status, same filters;
executions: ``execType`` Trade / BustTrade / Funding, the 7-day window of Bybit "Get Trade History"
on the replay clock, ``limit`` [1, 100] default 50. Cursors are not simulated (one page).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from perpbot.devtools.bybit_sim.errors import BybitError, bad
from perpbot.devtools.bybit_sim.private import engine_of, engines_of
from perpbot.devtools.bybit_sim.public import int_param, limit_param, linear
from perpbot.devtools.bybit_sim.shapes import execution_json, funding_json, order_json, plan_json
from perpbot.devtools.facade import bitget_params, route

ORDERS: dict[tuple[str, str], Callable] = {}
LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
TIF = {"GTC": "gtc", "IOC": "ioc", "FOK": "fok", "PostOnly": "post_only"}
TRIGGER_BY = {"LastPrice": "fill_price", "MarkPrice": "mark_price", "IndexPrice": "index_price"}
OPEN = ("New", "PartiallyFilled", "Untriggered")
WEEK_MS = 7 * 86_400_000


def _true(v) -> bool:
    return v is True or str(v).lower() == "true"


def records(sim, e) -> list[tuple[str, Any, dict]]:
    """Every Bybit order of engine ``e``: ("order" | "plan", engine record, JSON row); the market
    order a triggered plan executed is shown as that plan (one Bybit order)."""
    execs = {p.exec_order_id: p for p in e.plans.values() if p.exec_order_id}
    last = e.market.last
    out: list[tuple[str, Any, dict]] = [("plan", p, plan_json(p, e.orders.get(p.exec_order_id), sim.links, last))
                                           for p in e.plans.values()]
    out += [("order", o, order_json(o, sim.links, last, sim.tpsl_by.get(o.order_id)))
            for o in e.orders.values() if o.order_id not in execs]
    return out


@route(ORDERS, "POST", "/v5/order/create")
def create(sim, params):
    linear(params)
    e = engine_of(sim, params)
    side = params.get("side")
    otype = params.get("orderType")
    if side not in ("Buy", "Sell"):
        raise bad("side must be Buy or Sell")
    if otype not in ("Market", "Limit"):
        raise bad("orderType must be Market or Limit")
    if not params.get("qty"):
        raise bad("qty is required")
    if str(params.get("positionIdx", 0)) != "0":
        raise BybitError(10001, "position idx not match position mode")
    link = params.get("orderLinkId") or None
    if link is not None and not LINK_ID.match(str(link)):
        raise bad("orderLinkId: at most 36 letters, digits, - and _")
    reduce = _true(params.get("reduceOnly"))
    tp, sl = params.get("takeProfit") or None, params.get("stopLoss") or None
    if reduce and (tp or sl):
        raise bad("When reduceOnly is true, take profit/stop loss cannot be set")
    if e.margin_mode != "isolated":
        raise bad("the simulator accounts isolated margin only: POST /v5/account/set-margin-mode "
                  "setMarginMode=ISOLATED_MARGIN first")
    if params.get("triggerPrice"):
        plan = _conditional(sim, e, params, side.lower(), otype, reduce, link)
        return {"orderId": plan.order_id, "orderLinkId": link or ""}
    if (tp or sl) and (params.get("tpslMode") not in (None, "", "Full") or "Limit" in (
            params.get("tpOrderType"), params.get("slOrderType"))):
        raise bad("the simulator takes tpslMode Full (market TP/SL) only")
    by = {k: params.get(k) or "LastPrice" for k in ("tpTriggerBy", "slTriggerBy")}
    if any(v not in TRIGGER_BY for v in by.values()):
        raise bad("tpTriggerBy / slTriggerBy: LastPrice, MarkPrice or IndexPrice")
    tif = params.get("timeInForce") or ("IOC" if otype == "Market" else "GTC")
    if tif not in TIF:
        raise bad("timeInForce invalid")
    order = e.place_order(bitget_params(
        e, side=side.lower(), orderType=otype.lower(), size=str(params["qty"]),
        price=str(params["price"]) if otype == "Limit" and params.get("price") else None,
        force=TIF[tif] if otype == "Limit" else "gtc", reduceOnly="YES" if reduce else "NO", clientOid=link,
        marginMode="isolated", presetStopSurplusPrice=tp, presetStopLossPrice=sl))
    if link is not None:
        sim.links.add(order.client_oid)
    if tp or sl:
        sim.tpsl_by[order.order_id] = by
    return {"orderId": order.order_id, "orderLinkId": link or ""}


def _conditional(sim, e, params: dict, side: str, otype: str, reduce: bool, link: str | None):
    if otype != "Market" or not reduce:
        raise bad("the simulator takes reduce-only market conditional orders only")
    direction = str(params.get("triggerDirection") or "")
    if direction not in ("1", "2"):
        raise bad("triggerDirection must be 1 (rise) or 2 (fall) for a conditional order")
    try:
        trigger, qty = float(params["triggerPrice"]), float(params["qty"])
    except (TypeError, ValueError):
        raise bad("triggerPrice / qty invalid") from None
    last = e.market.last
    if direction == "1" and trigger <= last:
        raise BybitError(110092, f"expect Rising, but trigger_price[{trigger}] <= current[{last}]??LastPrice")
    if direction == "2" and trigger >= last:
        raise BybitError(110093, f"expect Falling, but trigger_price[{trigger}] >= current[{last}]??LastPrice")
    pos = e.position
    if pos is None or side != ("sell" if pos.side > 0 else "buy"):
        raise BybitError(110017, "current position is zero, cannot fix reduce-only order qty")
    if not qty > 0 or not e._on_grid(qty, e.market.lot):
        raise bad("Qty invalid")
    by = TRIGGER_BY.get(params.get("triggerBy") or "LastPrice")
    if by is None:
        raise bad("triggerBy invalid")
    loss = (side == "sell") == (direction == "2")  # closing a long on a fall / a short on a rise
    plan = e.place_tpsl(bitget_params(e, planType="loss_plan" if loss else "profit_plan",
                                      triggerPrice=str(params["triggerPrice"]), triggerType=by,
                                      holdSide=pos.hold_side, size=str(params["qty"]), clientOid=link))
    if link is not None:
        sim.links.add(plan.client_oid)
    return plan


def _find(sim, e, params: dict):
    """("order" | "plan", record) of ``orderId`` / ``orderLinkId`` (only user-given links), or None."""
    oid, link = params.get("orderId"), params.get("orderLinkId")
    if not oid and not link:
        raise bad("orderId or orderLinkId is required")
    if not oid:
        oid = e.by_client.get(str(link)) if str(link) in sim.links else None
    for kind, rec, _row in records(sim, e):
        if oid is not None and rec.order_id == str(oid):
            return kind, rec
    return None


def _partner(e, plan):
    """The other half of an entry's attached TP/SL pair (created one after the other: ids 2 apart, the same
    time), or None."""
    if plan.plan_type not in ("pos_loss", "pos_profit"):
        return None
    for p in e.plans.values():
        if (p.status == "live" and p.plan_type in ("pos_loss", "pos_profit") and p.plan_type != plan.plan_type
                and p.c_time == plan.c_time and abs(int(p.order_id) - int(plan.order_id)) <= 2):
            return p
    return None


def cancel_record(e, kind: str, rec) -> bool:
    """Cancel an open order / a live plan (and its TP/SL partner); False when it is not cancellable."""
    if kind == "plan":
        if rec.status != "live":
            return False
        partner = _partner(e, rec)
        ids = [rec.order_id] + ([partner.order_id] if partner is not None else [])
        e.cancel_plans(bitget_params(e, orderIdList=[{"orderId": i} for i in ids]))
        return True
    if not rec.open:
        return False
    e.cancel_order(bitget_params(e, orderId=rec.order_id))
    return True


@route(ORDERS, "POST", "/v5/order/cancel")
def cancel(sim, params):
    linear(params)
    e = engine_of(sim, params)
    hit = _find(sim, e, params)
    if hit is None or not cancel_record(e, *hit):
        raise BybitError(110001, "order not exists or too late to cancel")
    rec = hit[1]
    return {"orderId": rec.order_id, "orderLinkId": rec.client_oid if rec.client_oid in sim.links else ""}


@route(ORDERS, "POST", "/v5/order/cancel-all")
def cancel_all(sim, params):
    linear(params)
    out = []
    for e in engines_of(sim, params):
        for kind, rec, row in records(sim, e):
            if row["orderStatus"] in OPEN and (kind == "order" or rec.status == "live") and cancel_record(e, kind, rec):
                out.append({"orderId": row["orderId"], "orderLinkId": row["orderLinkId"]})
    return {"list": out, "success": "1"}


def _orders(sim, params: dict, history: bool) -> dict:
    linear(params)
    filt = params.get("orderFilter") or None
    if filt not in (None, "Order", "StopOrder"):
        raise bad("orderFilter: Order or StopOrder for linear")
    oid, link = params.get("orderId"), params.get("orderLinkId")
    closed = int_param(params, "openOnly", 0) != 0
    limit = limit_param(params, 20, 50)
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    rows = []
    for e in engines_of(sim, params):
        for kind, _rec, row in records(sim, e):
            if (filt == "Order" and kind == "plan") or (filt == "StopOrder" and kind == "order"):
                continue
            if oid or link:
                if (oid and row["orderId"] != str(oid)) or (not oid and row["orderLinkId"] != str(link)):
                    continue
            elif history:
                t = int(row["createdTime"])
                if (start is not None and t < start) or (end is not None and t > end):
                    continue
            elif (row["orderStatus"] in OPEN) == closed:
                continue
            rows.append(row)
    rows.sort(key=lambda r: (int(r["createdTime"]), int(r["orderId"])), reverse=True)
    return {"category": "linear", "list": rows[:limit], "nextPageCursor": ""}


@route(ORDERS, "GET", "/v5/order/realtime")
def realtime(sim, params):
    return _orders(sim, params, history=False)


@route(ORDERS, "GET", "/v5/order/history")
def history(sim, params):
    return _orders(sim, params, history=True)


@route(ORDERS, "GET", "/v5/execution/list")
def executions(sim, params):
    linear(params)
    es = engines_of(sim, params) if (params.get("symbol") or params.get("settleCoin") or params.get("baseCoin")) \
        else list(sim.engines.values())
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    if start is None and end is None:
        end = sim.market.now_ms
    start = end - WEEK_MS if start is None else start
    end = start + WEEK_MS if end is None else end
    if end - start > WEEK_MS:
        raise bad("endTime - startTime must be at most 7 days")
    limit = limit_param(params, 50, 100)
    rows = []
    for e in es:
        by_id = {rec_row["orderId"]: rec_row for _k, _r, rec_row in records(sim, e)}
        execs = {p.exec_order_id: p.order_id for p in e.plans.values() if p.exec_order_id}
        for seq, f in enumerate(e.fills, start=1):
            rows.append(execution_json(f, by_id[execs.get(f.order_id, f.order_id)], seq))
        rows += [funding_json(e.symbol, b, f"funding-{e.symbol}-{b['time']}") for b in e.bills]
    keep = {k: params[k] for k in ("orderId", "orderLinkId", "execType") if params.get(k)}
    rows = [r for r in rows if start <= int(r["execTime"]) <= end and all(r[k] == v for k, v in keep.items())]
    rows.sort(key=lambda r: (int(r["execTime"]), r["execId"]), reverse=True)
    return {"category": "linear", "list": rows[:limit], "nextPageCursor": ""}
