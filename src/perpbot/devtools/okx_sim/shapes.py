"""OKX API v5 JSON shapes of the shared engine's records (orders, TP/SL plans as algo orders,
fills, the position, the account), as ccxt 4.5's ``okx`` parses them (parse_order, parse_trade,
parse_position, parse_trading_balance).

Numbers are decimal strings, times ms UTC on the replay clock; amounts in contracts (1 SOL each).
Algo orders (OKX "Get algo order list"): an engine TP/SL plan placed through ``order-algo`` is a
``conditional`` algo order; the stop-loss and take-profit an entry carried (``attachAlgoOrds``)
become, when it fills, ONE algo order: ``oco`` when it carried both, else ``conditional``. States:
``live``; ``effective`` once triggered (``actualSide`` ``sl`` / ``tp``, ``ordIdList`` the order it
placed, ``actualPx`` / ``actualSz`` its fill); ``canceled`` when cancelled by the user or by the
venue (OKX cancels the reduce-only TP/SL of a position that is gone). The order a triggered algo
order places: ``source`` "7" (placed by a TP/SL order), ``algoId`` / ``algoClOrdId`` of that algo
order, ``clOrdId`` the one the algo order was given; a liquidation's order has ``category``
``full_liquidation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perpbot.devtools.bitget_sim.market import num
from perpbot.devtools.bitget_sim.models import LOSS_TYPES, Fill, Order, Plan
from perpbot.devtools.okx_sim.info import INST_IDS, TAKER_FEE

ORD_TYPE = {"market": "market", "limit": "limit"}
FORCE = {"post_only": "post_only", "ioc": "ioc", "fok": "fok"}


@dataclass
class Algo:
    """One OKX algo order: its engine plans (one leg, or the stop and take-profit legs of an OCO)."""

    algo_id: str
    legs: list[Plan]
    origin: str = ""                  # the entry whose attachAlgoOrds made it ("" when placed)
    meta: dict = field(default_factory=dict)   # clOrdId, algoClOrdId, px types of a placed one

    @property
    def ord_type(self) -> str:
        return "oco" if len(self.legs) > 1 else "conditional"

    def leg(self, loss: bool) -> Plan | None:
        return next((p for p in self.legs if (p.plan_type in LOSS_TYPES) == loss), None)

    @property
    def fired(self) -> Plan | None:
        return next((p for p in self.legs if p.status == "executed"), None)

    @property
    def state(self) -> str:
        if self.fired is not None:
            return "effective"
        return "live" if all(p.status == "live" for p in self.legs) else "canceled"


def algos(sim, e) -> list[Algo]:
    """The algo orders of engine ``e`` (oldest first): an entry's preset plans grouped by their origin."""
    groups: dict[str, Algo] = {}
    for p in e.plans.values():
        key = f"attach:{p.origin}" if p.origin else p.order_id
        a = groups.get(key)
        if a is None:
            groups[key] = Algo(p.order_id, [p], p.origin, sim.algo_meta.get(p.order_id, {}))
        else:
            a.legs.append(p)
    return list(groups.values())


def algo_of(sim, e, plan_id: str) -> Algo | None:
    return next((a for a in algos(sim, e) if any(p.order_id == plan_id for p in a.legs)), None)


def inst(symbol: str) -> str:
    return INST_IDS[symbol]


def algo_json(sim, e, a: Algo) -> dict:
    """``GET /api/v5/trade/orders-algo-pending`` / ``order-algo`` row of algo order ``a``."""
    sl, tp, fired = a.leg(True), a.leg(False), a.fired
    done = e.orders.get(fired.exec_order_id) if fired is not None else None
    first = a.legs[0]
    origin = e.orders.get(a.origin) if a.origin else None
    size = first.size if first.size is not None else (origin.size if origin is not None else 0.0)
    types = a.meta.get("pxType", {})
    u_time = max(p.u_time or p.c_time for p in a.legs)
    return {
        "instType": "SWAP", "instId": inst(e.symbol), "ccy": "", "ordId": "", "ordIdList": [done.order_id] if done else [],
        "algoId": a.algo_id, "clOrdId": a.meta.get("clOrdId", ""), "algoClOrdId": a.meta.get("algoClOrdId", ""),
        "sz": num(size), "closeFraction": "", "ordType": a.ord_type, "side": first.close_side, "posSide": "net",
        "tdMode": "isolated", "tgtCcy": "", "state": a.state, "lever": str(e.leverage), "reduceOnly": "true",
        "slTriggerPx": num(sl.trigger_price) if sl else "", "slOrdPx": "-1" if sl else "",
        "slTriggerPxType": types.get("sl", "mark") if sl else "",
        "tpTriggerPx": num(tp.trigger_price) if tp else "", "tpOrdPx": "-1" if tp else "",
        "tpTriggerPxType": types.get("tp", "mark") if tp else "", "tpOrdKind": "condition" if tp else "",
        "triggerPx": "", "triggerPxType": "", "ordPx": "", "moveTriggerPx": "", "callbackRatio": "",
        "callbackSpread": "", "activePx": "", "actualSz": num(done.filled) if done else "0",
        "actualPx": num(done.avg_price) if done is not None and done.avg_price else "",
        "actualSide": ("sl" if fired.plan_type in LOSS_TYPES else "tp") if fired else "",
        "triggerTime": str(fired.u_time) if fired else "", "last": num(e.market.last),
        "notionalUsd": num(size * e.market.last), "tag": "", "failCode": "", "isTradeBorrowMode": "",
        "amendPxOnTriggerType": "0", "cTime": str(first.c_time), "uTime": str(u_time),
    }


def _attached(sim, e, order: Order) -> list[dict]:
    if order.preset_sl is None and order.preset_tp is None:
        return []
    a = next((x for x in algos(sim, e) if x.origin == order.order_id), None)
    types = sim.attach_types.get(order.order_id, {})
    return [{"attachAlgoId": a.algo_id if a else "", "attachAlgoClOrdId": "", "sz": "", "amendPxOnTriggerType": "0",
             "tpTriggerPx": num(order.preset_tp) if order.preset_tp else "", "tpOrdPx": "-1" if order.preset_tp else "",
             "tpTriggerPxType": types.get("tp", "last") if order.preset_tp else "", "tpOrdKind": "condition",
             "slTriggerPx": num(order.preset_sl) if order.preset_sl else "", "slOrdPx": "-1" if order.preset_sl else "",
             "slTriggerPxType": types.get("sl", "last") if order.preset_sl else "", "failCode": "", "failReason": ""}]


def order_json(sim, e, order: Order) -> dict:
    """``GET /api/v5/trade/order`` row of an engine order (see the module docstring)."""
    plan = next((p for p in e.plans.values() if p.exec_order_id == order.order_id), None)
    a = algo_of(sim, e, plan.order_id) if plan is not None else None
    fills = [f for f in e.fills if f.order_id == order.order_id]
    last = fills[-1] if fills else None
    avg = order.avg_price
    liq = order.source == "liquidation"
    cl = (a.meta.get("clOrdId", "") if a else "") if (plan is not None or liq) else order.client_oid
    return {
        "instType": "SWAP", "instId": inst(e.symbol), "tgtCcy": "", "ccy": "", "ordId": order.order_id, "clOrdId": cl,
        "tag": "", "px": num(order.price) if order.price else "", "pxUsd": "", "pxVol": "", "pxType": "",
        "sz": num(order.size), "pnl": num(order.profit), "ordType": FORCE.get(order.force, ORD_TYPE[order.order_type])
        if order.order_type == "limit" else "market", "side": order.side, "posSide": "net", "tdMode": "isolated",
        "accFillSz": num(order.filled), "fillPx": num(last.price) if last else "", "tradeId": last.trade_id if last else "",
        "fillSz": num(last.qty) if last else "", "fillTime": str(last.c_time) if last else "",
        "avgPx": num(avg) if avg else "", "state": order.status, "stpId": "", "stpMode": "cancel_maker",
        "lever": str(order.leverage), "attachAlgoClOrdId": "", "tpTriggerPx": "", "tpTriggerPxType": "",
        "tpOrdPx": "", "slTriggerPx": "", "slTriggerPxType": "", "slOrdPx": "",
        "attachAlgoOrds": _attached(sim, e, order), "linkedAlgoOrd": {"algoId": ""}, "feeCcy": "USDT",
        "fee": num(-order.fee), "rebateCcy": "USDT", "rebate": "0", "source": "7" if plan is not None else "",
        "category": "full_liquidation" if liq else "normal", "reduceOnly": "true" if order.reduce_only else "false",
        "isTpLimit": "false", "cancelSource": "", "cancelSourceReason": "", "quickMgnType": "",
        "algoClOrdId": a.meta.get("algoClOrdId", "") if a else "", "algoId": a.algo_id if a else "",
        "uTime": str(order.u_time or order.c_time), "cTime": str(order.c_time),
    }


def fill_json(e, f: Fill, order: Order | None, cl_ord_id: str) -> dict:
    """``GET /api/v5/trade/fills-history`` row: ``fee`` negative (paid), ``fillPnl`` gross of fees."""
    rate = e.taker if f.scope == "taker" else e.maker
    return {
        "instType": "SWAP", "instId": inst(e.symbol), "tradeId": f.trade_id, "ordId": f.order_id, "clOrdId": cl_ord_id,
        "billId": f.trade_id, "subType": "1" if f.side == "buy" else "2", "tag": "", "fillPx": num(f.price),
        "fillSz": num(f.qty), "fillIdxPx": num(f.price), "fillPnl": num(f.profit), "fillPxVol": "", "fillPxUsd": "",
        "fillMarkVol": "", "fillFwdPx": "", "fillMarkPx": num(f.price), "side": f.side, "posSide": "net",
        "execType": "T" if f.scope == "taker" else "M", "feeCcy": "USDT", "fee": num(-f.fee), "feeRate": num(-rate),
        "ts": str(f.c_time), "fillTime": str(f.c_time),
    }


def position_json(e) -> dict | None:
    """``GET /api/v5/account/positions`` row of the open position (None when flat): ``pos`` signed
    contracts, ``margin`` the isolated margin, ``mmr`` the maintenance margin (USDT) at the mark."""
    p = e.position
    if p is None:
        return None
    mark = e.market.last
    upl = p.side * p.qty * (mark - p.entry)
    fee = -(p.open_fee + p.close_fee)
    return {
        "instType": "SWAP", "instId": inst(e.symbol), "mgnMode": "isolated", "posId": f"{p.c_time}{e.symbol[:3]}",
        "posSide": "net", "pos": num(p.side * p.qty), "posCcy": "", "availPos": num(p.qty), "ccy": "USDT",
        "avgPx": num(p.entry), "markPx": num(mark), "idxPx": num(mark), "last": num(mark), "upl": num(upl),
        "uplRatio": num(round(upl / p.margin, 10)) if p.margin else "0", "uplLastPx": num(upl),
        "lever": str(p.leverage), "liqPx": num(p.liq) if p.liq > 0 else "", "imr": "", "margin": num(p.margin),
        "mgnRatio": "", "mmr": num(p.mmr * p.qty * mark), "notionalUsd": num(p.qty * mark), "adl": "1",
        "interest": "0", "tradeId": "", "optVal": "", "pendingCloseOrdLiabVal": "", "liab": "", "liabCcy": "",
        "bePx": num(p.entry * (1 + p.side * 2 * TAKER_FEE)), "fee": num(fee), "fundingFee": num(-p.funding),
        "realizedPnl": num(p.achieved + fee - p.funding), "pnl": num(p.achieved), "closeOrderAlgo": [],
        "cTime": str(p.c_time), "uTime": str(p.u_time),
    }


def balance_json(sim) -> dict:
    """``GET /api/v5/account/balance`` (one USDT row): ``eq`` = wallet + every position's unrealised
    PnL, ``cashBal`` the wallet, ``availBal`` / ``availEq`` the available balance, ``frozenBal`` the
    rest (isolated margins and open orders' margin)."""
    w = sim.wallet
    bal, upl, avail = w.balance, w.upnl(), w.available()
    t = str(sim.market.now_ms)
    iso = sum(e.position.margin for e in w.engines if e.position is not None) + upl
    row = {"ccy": "USDT", "eq": num(bal + upl), "cashBal": num(bal), "availBal": num(avail), "availEq": num(avail),
           "frozenBal": num(bal - avail), "ordFrozen": num(w.frozen()), "isoEq": num(iso), "isoUpl": num(upl),
           "upl": num(upl), "eqUsd": num(bal + upl), "disEq": num(bal + upl), "fixedBal": "0", "uTime": t,
           "liab": "", "crossLiab": "", "isoLiab": "", "interest": "", "maxLoan": "", "mgnRatio": "",
           "notionalLever": "", "stgyEq": "0", "twap": "0", "spotInUseAmt": "", "imr": "", "mmr": ""}
    return {"adjEq": "", "imr": "", "mmr": "", "isoEq": num(iso), "ordFroz": num(w.frozen()), "totalEq": num(bal + upl),
            "notionalUsd": "", "mgnRatio": "", "upl": num(upl), "uTime": t, "details": [row]}
