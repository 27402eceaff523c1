"""Binance USDⓈ-M JSON shapes of the shared engine's records (orders, TP/SL plans as algo
orders, fills as user trades, the position, the account), as ccxt 4.5's ``binanceusdm``
parses them (parse_order, parse_trade, parse_position_risk, parse_balance, parse_income).

Ids are Binance's integers (the engine's decimal ids); numbers are decimal strings; times ms
UTC on the replay clock. Status rules (Binance "Order Status" / "Algo Status"):

* orders: NEW, PARTIALLY_FILLED, FILLED; CANCELED when the user cancelled it; EXPIRED when the
  venue did (a GTX post-only order that would take liquidity, an unfilled IOC / FOK).
* algo (conditional) orders: NEW while armed; FINISHED once triggered (its market order fills
  at once in the simulator; ``actualOrderId`` names that order); CANCELED when the user
  cancelled it; EXPIRED when the venue did (its position closed: Binance expires the remaining
  reduce-only / closePosition conditional orders of the symbol).
* the market order of a triggered algo order: ``type`` MARKET, ``origType`` STOP_MARKET /
  TAKE_PROFIT_MARKET / TRAILING_STOP_MARKET, ``stopPrice`` its trigger; a liquidation's order
  has a ``clientOrderId`` starting with ``autoclose-`` (Binance's liquidation orders).
"""

from __future__ import annotations

import math

from perpbot.devtools.binance_sim.info import TAKER_FEE
from perpbot.devtools.bitget_sim.market import num
from perpbot.devtools.bitget_sim.models import Fill, Order, Plan, Position

#: engine plan type -> Binance conditional order type
ALGO_TYPE = {"pos_loss": "STOP_MARKET", "loss_plan": "STOP_MARKET", "pos_profit": "TAKE_PROFIT_MARKET",
             "profit_plan": "TAKE_PROFIT_MARKET", "moving_plan": "TRAILING_STOP_MARKET"}
WORKING = {"mark_price": "MARK_PRICE", "fill_price": "CONTRACT_PRICE"}
TIF = {"gtc": "GTC", "ioc": "IOC", "fok": "FOK", "post_only": "GTX"}
LIQUIDATION_PREFIX = "autoclose-"


def client_id(order: Order) -> str:
    """The clientOrderId Binance shows: ``autoclose-...`` for a liquidation."""
    return LIQUIDATION_PREFIX + order.client_oid if order.source == "liquidation" else order.client_oid


def order_status(order: Order, user_cancelled: set) -> str:
    if order.status == "canceled":
        return "CANCELED" if order.order_id in user_cancelled else "EXPIRED"
    return {"live": "NEW", "partially_filled": "PARTIALLY_FILLED", "filled": "FILLED"}[order.status]


def order_json(order: Order, plan: Plan | None, user_cancelled: set) -> dict:
    """``GET /fapi/v1/order`` row. ``plan``: the algo order whose trigger created it, or None."""
    avg = order.avg_price
    otype = order.order_type.upper()
    orig = ALGO_TYPE[plan.plan_type] if plan is not None else otype
    return {
        "orderId": int(order.order_id), "symbol": order.symbol, "status": order_status(order, user_cancelled),
        "clientOrderId": client_id(order), "price": num(order.price) if order.price else "0",
        "avgPrice": num(avg) if avg else "0", "origQty": num(order.size), "executedQty": num(order.filled),
        "cumQty": num(order.filled), "cumQuote": num(order.cost), "timeInForce": TIF.get(order.force, "GTC"),
        "type": otype, "reduceOnly": order.reduce_only, "closePosition": bool(plan and plan.size is None),
        "side": order.side.upper(), "positionSide": "BOTH",
        "stopPrice": num(plan.trigger_price if plan.plan_type != "moving_plan" else plan.stop) if plan else "0",
        "workingType": WORKING.get(plan.trigger_type, "CONTRACT_PRICE") if plan else "CONTRACT_PRICE",
        "priceProtect": False, "origType": orig, "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0, "time": order.c_time, "updateTime": order.u_time or order.c_time,
    }


def algo_status(plan: Plan, user_cancelled: set) -> str:
    if plan.status == "live":
        return "NEW"
    if plan.status == "executed":
        return "FINISHED"
    return "CANCELED" if plan.order_id in user_cancelled else "EXPIRED"


def algo_json(plan: Plan, actual: Order | None, user_cancelled: set) -> dict:
    """``GET /fapi/v1/algoOrder`` row of a TP/SL plan; ``actual``: the order its trigger placed."""
    trailing = plan.plan_type == "moving_plan"
    return {
        "algoId": int(plan.order_id), "clientAlgoId": plan.client_oid, "algoType": "CONDITIONAL",
        "orderType": ALGO_TYPE[plan.plan_type], "symbol": plan.symbol, "side": plan.close_side.upper(),
        "positionSide": "BOTH", "timeInForce": "GTE_GTC" if plan.size is None else "GTC",
        "quantity": num(plan.size) if plan.size is not None else "0",
        "algoStatus": algo_status(plan, user_cancelled),
        "triggerPrice": "0" if trailing else num(plan.trigger_price), "price": "0", "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER", "workingType": WORKING.get(plan.trigger_type, "CONTRACT_PRICE"),
        "priceMatch": "NONE", "closePosition": plan.size is None, "priceProtect": False, "reduceOnly": True,
        "activatePrice": num(plan.trigger_price) if trailing else None,
        "callbackRate": num(plan.range_rate * 100) if trailing else None,
        "createTime": plan.c_time, "updateTime": plan.u_time or plan.c_time,
        "triggerTime": plan.u_time if plan.status == "executed" else 0, "goodTillDate": 0,
        "actualOrderId": plan.exec_order_id or "",
        "actualPrice": num(actual.avg_price) if actual is not None and actual.avg_price else "0",
        "executedQty": num(actual.filled) if actual is not None else "0",
    }


def trade_json(f: Fill, order: Order | None) -> dict:
    """``GET /fapi/v1/userTrades`` row: commission USDT (> 0 paid), realizedPnl gross of fees."""
    return {
        "buyer": f.side == "buy", "commission": num(f.fee), "commissionAsset": "USDT", "id": int(f.trade_id),
        "maker": f.scope == "maker", "orderId": int(f.order_id), "price": num(f.price), "qty": num(f.qty),
        "quoteQty": num(f.qty * f.price), "realizedPnl": num(f.profit), "side": f.side.upper(),
        "positionSide": "BOTH", "symbol": f.symbol, "time": f.c_time,
    }


def position_json(pos: Position | None, symbol: str, mark: float, leverage: int, frozen: float,
                  v2: bool) -> dict:
    """``GET /fapi/v3/positionRisk`` row (v2: with ``leverage``, ``marginType``, ``maxNotionalValue``,
    ``isAutoAddMargin``; v3 has none of them, as Binance's v3). ``isolatedMargin`` = isolated
    wallet + unrealised PnL; ``initialMargin`` = |notional| / leverage at the mark price."""
    amt = pos.side * pos.qty if pos else 0.0
    entry = pos.entry if pos else 0.0
    upnl = amt * (mark - entry) if pos else 0.0
    notional = amt * mark
    margin = pos.margin if pos else 0.0
    lev = pos.leverage if pos else leverage
    be = entry * (1 + pos.side * 2 * TAKER_FEE) if pos else 0.0  # round-trip taker fees
    row = {
        "symbol": symbol, "positionSide": "BOTH", "positionAmt": num(amt), "entryPrice": num(entry),
        "breakEvenPrice": num(be), "markPrice": num(mark), "unRealizedProfit": num(upnl),
        "liquidationPrice": num(pos.liq) if pos and math.isfinite(pos.liq) and pos.liq > 0 else "0",
        "isolatedMargin": num(margin + upnl) if pos else "0", "notional": num(notional), "marginAsset": "USDT",
        "isolatedWallet": num(margin), "initialMargin": num(abs(notional) / lev + frozen),
        "maintMargin": num(pos.mmr * abs(notional)) if pos else "0", "positionInitialMargin": num(abs(notional) / lev),
        "openOrderInitialMargin": num(frozen), "adl": 0, "bidNotional": "0", "askNotional": "0",
        "updateTime": pos.u_time if pos else 0,
    }
    if v2:
        row.update(leverage=str(lev), marginType="isolated", isAutoAddMargin="false", maxNotionalValue="50000")
    return row


def account_json(wallet, engines) -> dict:
    """``GET /fapi/v2|v3/account`` (and the USDT row of ``/balance``): walletBalance = the wallet;
    unrealizedProfit = every position's; marginBalance = their sum; availableBalance = wallet -
    position margins - open-order margins (:meth:`Wallet.available`)."""
    bal, upnl, avail = wallet.balance, wallet.upnl(), wallet.available()
    pim = sum(abs(e.position.qty * e.market.last) / e.position.leverage for e in engines if e.position)
    oim = wallet.frozen()
    maint = sum(e.position.mmr * e.position.qty * e.market.last for e in engines if e.position)
    t = max(e.market.now_ms for e in engines)
    asset = {"asset": "USDT", "walletBalance": num(bal), "unrealizedProfit": num(upnl),
             "marginBalance": num(bal + upnl), "maintMargin": num(maint), "initialMargin": num(pim + oim),
             "positionInitialMargin": num(pim), "openOrderInitialMargin": num(oim), "crossWalletBalance": num(avail),
             "crossUnPnl": "0", "availableBalance": num(avail), "maxWithdrawAmount": num(max(avail, 0.0)),
             "marginAvailable": True, "updateTime": t}
    return {"totalInitialMargin": num(pim + oim), "totalMaintMargin": num(maint), "totalWalletBalance": num(bal),
            "totalUnrealizedProfit": num(upnl), "totalMarginBalance": num(bal + upnl),
            "totalPositionInitialMargin": num(pim), "totalOpenOrderInitialMargin": num(oim),
            "totalCrossWalletBalance": num(avail), "totalCrossUnPnl": "0", "availableBalance": num(avail),
            "maxWithdrawAmount": num(max(avail, 0.0)), "canTrade": True, "canDeposit": True, "canWithdraw": True,
            "feeTier": 0, "updateTime": t, "assets": [asset],
            "positions": [{"symbol": e.symbol, "positionSide": "BOTH", "positionAmt": num(e.position.side * e.position.qty),
                           "unrealizedProfit": num(e.upnl()), "isolatedMargin": num(e.position.margin + e.upnl()),
                           "notional": num(e.position.side * e.position.qty * e.market.last),
                           "isolatedWallet": num(e.position.margin), "initialMargin": num(
                               e.position.qty * e.market.last / e.position.leverage),
                           "maintMargin": num(e.position.mmr * e.position.qty * e.market.last),
                           "updateTime": e.position.u_time} for e in engines if e.position]}
