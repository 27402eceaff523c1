"""Bybit v5 JSON shapes of the shared engine's records (orders, TP/SL and conditional orders, fills as
executions, funding as executions, the position, the wallet), as ccxt 4.5's ``bybit`` parses them
(parse_order, parse_trade, parse_income, parse_position, parse_balance).

Numbers are decimal strings, times ms UTC (strings where Bybit writes strings) on the replay clock.
One Bybit order per engine record: an ordinary order, or a plan (a conditional / TP/SL order) which,
once triggered, keeps its ``orderId`` and shows the fill of the market order the engine executed for it
(Bybit: a conditional order goes Untriggered -> Triggered -> Filled under one id). Rules (Bybit enums
``stopOrderType`` / ``createType`` / ``orderStatus``):

* the entry's attached TP/SL (engine ``pos_profit`` / ``pos_loss``: the whole position) are
  ``TakeProfit`` / ``StopLoss`` orders, ``tpslMode`` Full, ``qty`` "0", ``createType``
  CreateByTakeProfit / CreateByStopLoss, no ``orderLinkId`` (system orders);
* a reduce-only conditional market order (``triggerPrice`` + ``triggerDirection`` on /v5/order/create;
  engine ``loss_plan`` / ``profit_plan``) is a ``Stop`` order, ``createType`` CreateByStopOrder, with
  the user's ``orderLinkId`` and ``qty``; the trailing stop (trading-stop; ``moving_plan``) is
  ``TrailingStop`` (``triggerPrice`` = its activation price), CreateByTrailingStop;
* statuses: New / PartiallyFilled / Filled / Cancelled for orders; Untriggered while armed, Filled once
  triggered and executed, Deactivated when cancelled (by the user, or by the venue when the position
  closed: "The system will cancel these orders if the position is closed", /v5/position/trading-stop);
* a liquidation (the engine's rule: the whole isolated margin is lost) is an order of ``createType``
  CreateByTakeOver_PassThrough whose execution has ``execType`` BustTrade; its ``execFee`` is the
  clearance (the rest of the margin);
* funding: executions of ``execType`` Funding, ``execFee`` > 0 when paid (Bybit: the opposite sign of
  the transaction log's ``funding``), ``feeRate`` the rate, ``execPrice`` the mark price.
"""

from __future__ import annotations

import math

from perpbot.devtools.bitget_sim.market import num
from perpbot.devtools.bitget_sim.models import Fill, Order, Plan, Position

#: engine plan type -> (stopOrderType, createType, tpslMode)
PLAN_KIND = {"pos_loss": ("StopLoss", "CreateByStopLoss", "Full"),
             "pos_profit": ("TakeProfit", "CreateByTakeProfit", "Full"),
             "loss_plan": ("Stop", "CreateByStopOrder", ""), "profit_plan": ("Stop", "CreateByStopOrder", ""),
             "moving_plan": ("TrailingStop", "CreateByTrailingStop", "Full")}
TRIGGER_BY = {"mark_price": "MarkPrice", "fill_price": "LastPrice", "index_price": "IndexPrice"}
TIF = {"gtc": "GTC", "ioc": "IOC", "fok": "FOK", "post_only": "PostOnly"}
LIQUIDATION = "CreateByTakeOver_PassThrough"


def _s(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else num(x)


def order_status(order: Order) -> str:
    return {"live": "New", "partially_filled": "PartiallyFilled", "filled": "Filled", "canceled": "Cancelled"}[order.status]


def _fill_fields(order: Order | None) -> dict:
    if order is None:
        return {"avgPrice": "", "cumExecQty": "0", "cumExecValue": "0", "cumExecFee": "0", "cumFeeDetail": {}}
    return {"avgPrice": _s(order.avg_price), "cumExecQty": num(order.filled), "cumExecValue": num(order.cost),
            "cumExecFee": num(order.fee), "cumFeeDetail": {"USDT": num(order.fee)} if order.filled else {}}


def _base(symbol: str, order_id: str, link: str, side: str) -> dict:
    return {"orderId": order_id, "orderLinkId": link, "blockTradeId": "", "symbol": symbol, "side": side.capitalize(),
            "isLeverage": "", "positionIdx": 0, "cancelType": "UNKNOWN", "rejectReason": "EC_NoError", "orderIv": "",
            "smpType": "None", "smpGroup": 0, "smpOrderId": "", "placeType": "", "closeOnTrigger": False,
            "tpLimitPrice": "0", "slLimitPrice": "0", "extraFees": "", "slippageToleranceType": "UNKNOWN",
            "slippageTolerance": "0", "parentOrderLinkId": ""}


def order_json(order: Order, links: set, last: float, by: dict | None = None) -> dict:
    """An ordinary (market / limit) order; ``links``: the engine client ids the user gave; ``by``: the
    ``tpTriggerBy`` / ``slTriggerBy`` its entry asked for (default LastPrice, as Bybit)."""
    tpsl = order.preset_tp is not None or order.preset_sl is not None
    liq = order.source == "liquidation"
    row = _base(order.symbol, order.order_id, order.client_oid if order.client_oid in links else "", order.side)
    row.update({
        "price": _s(order.price) or "0", "qty": num(order.size), "orderStatus": order_status(order),
        "createType": LIQUIDATION if liq else "CreateByUser",
        "leavesQty": num(order.remaining if order.open else 0.0),
        "leavesValue": num((order.remaining if order.open else 0.0) * (order.price or last)),
        **_fill_fields(order), "timeInForce": "IOC" if order.order_type == "market" else TIF[order.force],
        "orderType": order.order_type.capitalize(), "stopOrderType": "", "triggerPrice": "", "triggerDirection": 0,
        "triggerBy": "", "takeProfit": _s(order.preset_tp), "stopLoss": _s(order.preset_sl),
        "tpslMode": "Full" if tpsl else "",
        "tpTriggerBy": (by or {}).get("tpTriggerBy", "LastPrice") if order.preset_tp else "",
        "slTriggerBy": (by or {}).get("slTriggerBy", "LastPrice") if order.preset_sl else "", "lastPriceOnCreated": num(last),
        "reduceOnly": order.reduce_only, "marketUnit": "", "createdTime": str(order.c_time),
        "updatedTime": str(order.u_time or order.c_time)})
    return row


def plan_direction(plan: Plan) -> int:
    """Bybit ``triggerDirection`` of a plan: 1 rises to its trigger, 2 falls to it."""
    loss = plan.plan_type in ("pos_loss", "loss_plan", "moving_plan")
    long_pos = plan.hold_side == "long"
    return 2 if loss == long_pos else 1


def plan_json(plan: Plan, executed: Order | None, links: set, last: float) -> dict:
    """A conditional / TP/SL / trailing order (rules in the module docstring); ``executed``: the market
    order its trigger placed."""
    stype, ctype, mode = PLAN_KIND[plan.plan_type]
    row = _base(plan.symbol, plan.order_id, plan.client_oid if plan.client_oid in links else "", plan.close_side)
    if plan.status == "live":
        status = "Untriggered"
    elif plan.status == "executed" and executed is not None:
        status = order_status(executed)
    else:
        status = "Deactivated"
    qty = executed.size if executed is not None else (plan.size if plan.size is not None else 0.0)
    row.update({
        "price": "0", "qty": num(qty), "orderStatus": status, "createType": ctype, "leavesQty": num(qty) if
        plan.status == "live" else "0", "leavesValue": "0", **_fill_fields(executed), "timeInForce": "IOC",
        "orderType": "Market", "stopOrderType": stype, "triggerPrice": num(plan.trigger_price),
        "triggerDirection": plan_direction(plan), "triggerBy": TRIGGER_BY.get(plan.trigger_type, "LastPrice"),
        "takeProfit": "", "stopLoss": "", "tpslMode": mode, "tpTriggerBy": "", "slTriggerBy": "",
        "lastPriceOnCreated": num(last), "reduceOnly": True, "closeOnTrigger": plan.plan_type in ("pos_loss",
                                                                                                 "pos_profit"),
        "marketUnit": "", "createdTime": str(plan.c_time), "updatedTime": str(plan.u_time or plan.c_time)})
    return row


def execution_json(f: Fill, order_row: dict, seq: int) -> dict:
    """``GET /v5/execution/list`` row of a trade fill; ``order_row``: the Bybit order it belongs to."""
    liq = order_row.get("createType") == LIQUIDATION
    return {
        "symbol": f.symbol, "orderId": order_row["orderId"], "orderLinkId": order_row["orderLinkId"],
        "side": f.side.capitalize(), "orderPrice": order_row["price"], "orderQty": order_row["qty"],
        "leavesQty": order_row["leavesQty"], "createType": order_row["createType"],
        "orderType": order_row["orderType"], "stopOrderType": order_row["stopOrderType"], "execFee": num(f.fee),
        "execFeeV2": "", "execId": f.trade_id, "execPrice": num(f.price), "execQty": num(f.qty),
        "execType": "BustTrade" if liq else "Trade", "execValue": num(f.qty * f.price), "execTime": str(f.c_time),
        "feeCurrency": "USDT", "isMaker": f.scope == "maker", "feeRate": num(round(f.fee / (f.qty * f.price), 8))
        if f.qty * f.price else "0", "tradeIv": "", "markIv": "", "markPrice": num(f.price), "indexPrice": "",
        "underlyingPrice": "", "blockTradeId": "", "closedSize": num(f.qty) if f.trade_side == "close" else "0",
        "seq": seq, "extraFees": ""}


def funding_json(symbol: str, bill: dict, exec_id: str) -> dict:
    """``GET /v5/execution/list`` row (execType Funding) of one funding settlement (``bill`` of the
    engine: time, rate, mark, qty signed, amount < 0 paid)."""
    qty = float(bill["qty"])
    return {
        "symbol": symbol, "orderId": "", "orderLinkId": "", "side": "Buy" if qty > 0 else "Sell", "orderPrice": "0",
        "orderQty": "0", "leavesQty": "0", "createType": "", "orderType": "UNKNOWN", "stopOrderType": "UNKNOWN",
        "execFee": num(-float(bill["amount"])), "execFeeV2": "", "execId": exec_id, "execPrice": num(bill["mark"]),
        "execQty": num(abs(qty)), "execType": "Funding", "execValue": num(abs(qty) * float(bill["mark"])),
        "execTime": str(bill["time"]), "feeCurrency": "USDT", "isMaker": False, "feeRate": num(bill["rate"]),
        "tradeIv": "", "markIv": "", "markPrice": num(bill["mark"]), "indexPrice": "", "underlyingPrice": "",
        "blockTradeId": "", "closedSize": "0", "seq": 0, "extraFees": ""}


def position_json(e, tpsl: dict) -> dict:
    """``GET /v5/position/list`` row of one symbol's engine (flat: size "0", side ""); ``tpsl``: the live
    position-wide take-profit / stop-loss / trailing levels."""
    pos: Position | None = e.position
    mark = e.market.last
    row = {"positionIdx": 0, "riskId": 1, "riskLimitValue": "200000", "symbol": e.symbol, "side": "", "size": "0",
           "avgPrice": "0", "positionValue": "0", "tradeMode": 1 if e.margin_mode == "isolated" else 0,
           "autoAddMargin": 0, "positionStatus": "Normal", "leverage": str(e.leverage), "markPrice": num(mark),
           "liqPrice": "", "bustPrice": "", "positionIM": "0", "positionMM": "0", "positionBalance": "0",
           "takeProfit": tpsl.get("take_profit", "0"), "stopLoss": tpsl.get("stop_loss", "0"),
           "trailingStop": tpsl.get("trailing", "0"), "sessionAvgPrice": "", "delta": "", "gamma": "", "vega": "",
           "theta": "", "unrealisedPnl": "0", "curRealisedPnl": "0", "cumRealisedPnl": "0", "adlRankIndicator": 0,
           "createdTime": "0", "updatedTime": str(e.market.now_ms), "seq": 0, "isReduceOnly": False,
           "mmrSysUpdatedTime": "", "leverageSysUpdatedTime": "", "tpslMode": "Full"}
    if pos is None:
        return row
    upnl = pos.side * pos.qty * (mark - pos.entry)
    liq = _s(pos.liq) if math.isfinite(pos.liq) and pos.liq > 0 else ""
    row.update({"side": "Buy" if pos.side > 0 else "Sell", "size": num(pos.qty), "avgPrice": num(pos.entry),
                "positionValue": num(pos.qty * pos.entry), "leverage": str(pos.leverage), "liqPrice": liq,
                "positionIM": num(pos.margin), "positionMM": num(pos.mmr * pos.qty * mark),
                "positionBalance": num(pos.margin), "unrealisedPnl": num(upnl),
                "curRealisedPnl": num(pos.achieved - pos.open_fee - pos.close_fee - pos.funding),
                "createdTime": str(pos.c_time), "updatedTime": str(pos.u_time)})
    return row


def wallet_json(wallet, engines, now_ms: int) -> dict:
    """``GET /v5/account/wallet-balance?accountType=UNIFIED``: one UNIFIED account, its USDT coin
    (walletBalance = the wallet, equity = + unrealised PnL, totalPositionIM = every position's isolated
    margin, totalOrderIM = live orders' reserve; ``availableToWithdraw`` "" as on UTA 2.0, so ccxt
    derives free = total - used)."""
    bal, upnl = wallet.balance, wallet.upnl()
    pim, oim = wallet.used(), wallet.frozen()
    mm = sum(e.position.mmr * e.position.qty * e.market.last for e in engines if e.position)
    coin = {"coin": "USDT", "equity": num(bal + upnl), "usdValue": num(bal + upnl), "walletBalance": num(bal),
            "free": "", "locked": "0", "spotHedgingQty": "0", "borrowAmount": "0", "availableToWithdraw": "",
            "accruedInterest": "0", "totalOrderIM": num(oim), "totalPositionIM": num(pim), "totalPositionMM": num(mm),
            "unrealisedPnl": num(upnl), "cumRealisedPnl": "0", "bonus": "0", "marginCollateral": True,
            "collateralSwitch": True, "availableToBorrow": ""}
    return {"list": [{"accountType": "UNIFIED", "accountIMRate": "0", "accountMMRate": "0",
                      "totalEquity": num(bal + upnl), "totalWalletBalance": num(bal), "totalMarginBalance": num(bal + upnl),
                      "totalAvailableBalance": num(bal - pim - oim), "totalPerpUPL": num(upnl),
                      "totalInitialMargin": num(pim + oim), "totalMaintenanceMargin": num(mm), "accountLTV": "0",
                      "coin": [coin]}]}
