"""Per-candle matching of the Bitget simulator: what happens when the replay clock closes a candle.

Order of events inside candle ``i`` (the same as the backtester's loop,
:mod:`perpbot.sim.kernel`):

1. funding: a position held at the open of a candle that carries a funding event (00/08/16 UTC)
   pays ``funding_payment(side, qty, mark, rate)`` (mark from the mark file at the event time,
   else the candle open: :func:`perpbot.data.align_funding`); it reduces the balance and the
   isolated margin, and the liquidation price is recomputed;
2. the open: a stop / take-profit / liquidation level already crossed fills at the open (gap);
3. market orders placed before this candle fill at its open (+ slippage against the taker),
   taker fee; a partial-fill fault fills a share now and the rest at the next candle;
4. limit orders: marketable at the open -> filled at the open (taker); else filled at their
   price when the candle trades through it (low <= buy price / high >= sell price; maker fee);
   ioc / fok limits not filled in their first candle are cancelled. Post-only limits follow the
   backtester's rule (:func:`perpbot.sim.kernel._work_limit`): through the price in their first
   candle's open -> cancelled (the book was already through it when the order arrived, so the
   venue rejects a post-only order); else filled at their price, maker fee, only in a candle that
   trades strictly through it (low < buy price / high > sell price; a touch is not a fill: the
   queue ahead of it);
5. intrabar TP/SL/liquidation with :func:`perpbot.sim.accounting.candle_trigger` (the
   losing side first when both are touched; levels crossed at the open fill at the open);
   TP/SL orders execute as market orders at their trigger level (+ slippage) whatever their
   executePrice; liquidation loses the whole isolated margin (the backtester's clearance rule);
6. the close: the clock moves to the candle's close; trailing (moving_plan) stops move to
   best price x (1 -/+ callback) once the activation price was reached (effective from the next
   candle, like the backtester's trailing stop).

Trigger prices are compared with the trade candles (mark = last price in this simulator).
"""

from __future__ import annotations

import math

from perpbot.devtools.bitget_sim.models import LOSS_TYPES, PROFIT_TYPES, Fill, Order, Plan
from perpbot.sim.accounting import (
    NO_TRIGGER, TRIGGER_LIQ, TRIGGER_SL, candle_trigger, floor_to_step, funding_payment, unrealized_pnl,
)

EPS = 1e-9


def fill_market(engine, order: Order, reference: float, t: int) -> None:
    """Fill a market order at ``reference`` (+ slippage); a partial-fill fault fills only its share."""
    qty = order.remaining
    if order.fill_fraction is not None:
        share = floor_to_step(order.size * order.fill_fraction, engine.market.lot)
        order.fill_fraction = None
        if share >= engine.market.lot - EPS:
            qty = min(qty, share)
    engine.execute(order, qty, engine.market_price(reference, order.side == "buy"), "taker", t)


def close_next_candle(engine) -> dict:
    """Close candle ``market.closed`` (steps in the module docstring); return it as a dict."""
    m = engine.market
    i = m.closed
    o, h, lo, c = float(m.o[i]), float(m.h[i]), float(m.lo[i]), float(m.c[i])
    t_open = int(m.ts[i])
    t_in = t_open + m.base_ms - 1
    # 1. funding at the open
    pos = engine.position
    if pos is not None and m.f_rate[i] != 0.0:
        rate, mark = float(m.f_rate[i]), float(m.f_mark[i])
        pay = funding_payment(pos.side, pos.qty, mark, rate)
        engine.balance -= pay
        pos.margin -= pay
        pos.funding += pay
        engine.update_liq()
        engine.bills.append({"time": t_open, "rate": rate, "mark": mark, "qty": pos.side * pos.qty, "amount": -pay})
        engine.events.append(("positions", None))
        engine.events.append(("account", None))
    # 2. gaps through protective levels at the open
    check_triggers(engine, o, o, o, t_open)
    # 3. market orders at the open
    for order in [x for x in engine.orders.values() if x.open and x.order_type == "market" and x.c_time <= t_open]:
        fill_market(engine, order, o, t_open)
    # 4. limit orders
    for order in [x for x in engine.orders.values() if x.open and x.order_type == "limit" and x.c_time <= t_open]:
        _match_limit(engine, order, o, h, lo, t_open, t_in)
    # 5. intrabar TP / SL / liquidation
    check_triggers(engine, o, h, lo, t_in)
    # 6. the close
    m.set_closed(i + 1)
    _trail(engine, h, lo)
    if engine.position is not None:
        engine.events.append(("positions", None))
    return {"timestamp": t_open, "open": o, "high": h, "low": lo, "close": c, "volume": float(m.v[i])}


def _match_limit(engine, order: Order, o: float, h: float, lo: float, t_open: int, t_in: int) -> None:
    p = order.price
    buy = order.side == "buy"
    order.candles_seen += 1
    if order.force == "post_only":
        if order.candles_seen == 1 and ((buy and o <= p) or (not buy and o >= p)):
            engine._cancel(order)
        elif (buy and lo < p) or (not buy and h > p):
            engine.execute(order, order.remaining, p, "maker", t_in)
        return
    if (buy and o <= p) or (not buy and o >= p):
        engine.execute(order, order.remaining, o, "taker", t_open)
    elif (buy and lo <= p) or (not buy and h >= p):
        engine.execute(order, order.remaining, p, "maker", t_in)
    elif order.force in ("ioc", "fok"):
        engine._cancel(order)


def _best_levels(engine, pos):
    live = [p for p in engine.plans.values() if p.status == "live" and p.hold_side == pos.hold_side]
    loss = [(p.trigger_price if p.plan_type != "moving_plan" else p.stop, p) for p in live if p.plan_type in LOSS_TYPES]
    loss = [(lv, p) for lv, p in loss if not math.isnan(lv)]
    prof = [(p.trigger_price, p) for p in live if p.plan_type in PROFIT_TYPES]
    pick_sl = max if pos.side > 0 else min      # the stop nearest the price triggers first
    pick_tp = min if pos.side > 0 else max
    sl = pick_sl(loss, key=lambda x: x[0]) if loss else (math.nan, None)
    tp = pick_tp(prof, key=lambda x: x[0]) if prof else (math.nan, None)
    return sl, tp


def check_triggers(engine, o: float, h: float, lo: float, t: int) -> None:
    """Fire the position's TP/SL plans / liquidation touched by a candle (o, h, lo)."""
    for _ in range(16):  # several partial plans may fire in one candle
        pos = engine.position
        if pos is None:
            return
        (sl, sl_plan), (tp, tp_plan) = _best_levels(engine, pos)
        code, price = candle_trigger(pos.side, o, h, lo, sl, tp, pos.liq)
        if code == NO_TRIGGER:
            return
        if code == TRIGGER_LIQ:
            liquidate(engine, price, t)
            return
        execute_plan(engine, sl_plan if code == TRIGGER_SL else tp_plan, price, t)


def execute_plan(engine, plan: Plan, price: float, t: int) -> Order:
    """A triggered TP/SL plan: a reduce-only market order for its size (whole position for pos_*)."""
    pos = engine.position
    size = pos.qty if plan.size is None else min(plan.size, pos.qty)
    order = Order(order_id=engine.new_id(), client_oid=engine.new_id(), symbol=engine.symbol, side=plan.close_side,
                  order_type="market", size=size, price=None, reduce_only=True, force="gtc",
                  margin_mode="isolated", leverage=pos.leverage, c_time=t, source=f"{plan.plan_type}_market")
    engine.orders[order.order_id] = order
    engine.by_client[order.client_oid] = order.order_id
    plan.status = "executed"
    plan.exec_order_id = order.order_id
    plan.u_time = t
    engine.events.append(("orders-algo", plan))
    engine.execute(order, size, engine.market_price(price, plan.close_side == "buy"), "taker", t)
    return order


def liquidate(engine, price: float, t: int) -> None:
    """Liquidation at ``price``: the whole isolated margin is lost (balance -= margin); the fill
    reports gross PnL as profit and the rest of the margin as the fee (clearance)."""
    pos = engine.position
    gross = unrealized_pnl(pos.side, pos.qty, pos.entry, price)
    clearance = pos.margin + gross
    engine.balance -= pos.margin
    side = "sell" if pos.side > 0 else "buy"
    order = Order(order_id=engine.new_id(), client_oid=engine.new_id(), symbol=engine.symbol, side=side,
                  order_type="market", size=pos.qty, price=None, reduce_only=True, force="gtc",
                  margin_mode="isolated", leverage=pos.leverage, c_time=t, source="liquidation",
                  filled=pos.qty, cost=pos.qty * price, fee=clearance, profit=gross, status="filled", u_time=t)
    engine.orders[order.order_id] = order
    engine.by_client[order.client_oid] = order.order_id
    f = Fill(trade_id=engine.new_id(), order_id=order.order_id, symbol=engine.symbol, side=side, price=price,
             qty=pos.qty, fee=clearance, profit=gross, trade_side="close", scope="taker", c_time=t)
    engine.fills.append(f)
    engine.position = None
    engine.market.position_qty = 0.0
    engine.cancel_position_plans()
    for ev in (("orders", order), ("fill", f), ("positions", None), ("account", None)):
        engine.events.append(ev)


def _trail(engine, h: float, lo: float) -> None:
    pos = engine.position
    if pos is None:
        return
    for p in engine.plans.values():
        if p.status != "live" or p.plan_type != "moving_plan" or p.hold_side != pos.hold_side:
            continue
        if math.isnan(p.stop) and not ((pos.side > 0 and h >= p.trigger_price) or (pos.side < 0 and lo <= p.trigger_price)):
            continue  # not activated yet
        new = h * (1.0 - p.range_rate) if pos.side > 0 else lo * (1.0 + p.range_rate)
        if math.isnan(p.stop) or (pos.side > 0 and new > p.stop) or (pos.side < 0 and new < p.stop):
            p.stop = new
            p.u_time = engine.now
