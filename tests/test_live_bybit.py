"""The live loop (LiveBot) on Bybit (v5, linear, unified account): the local Bybit simulator
(:mod:`perpbot.devtools.bybit_sim`, the Bitget simulator's accounting behind Bybit's v5 protocol) and the
real ccxt ``bybit`` client.

* an entry is a market order carrying its stop-loss / take-profit (Bybit's position-wide ``StopLoss`` /
  ``TakeProfit`` orders, without client ids); once the fill is taken over they are replaced by perpbot's
  own reduce-only conditional (``Stop``) orders, whose client ids are the ledger's: exactly one stop-loss
  and one take-profit at any time, every later reconciliation clean, nothing placed twice; the stop
  triggers and the trade closes with exit reason ``stop_loss`` read from the triggered order (its
  ``stopOrderType`` / trigger direction), at the stop, fees at Bybit's taker rate, PnL = the wallet's change,
  all worked out by hand from the real candles;
* a restart adopts the position with the levels of its stop orders and sends nothing;
* a position whose stop was cancelled on the venue gets a conditional stop at the configured distance;
* no trailing stop on Bybit (no client id can be attached to Bybit's trailing stop): none is placed;
* an entry answered after the client's timeout is found by client id, not sent twice.
"""

from __future__ import annotations

import asyncio

import pytest

from perpbot.devtools.bybit_sim import BybitSim
from perpbot.exchange import venue_params
from perpbot.sim.accounting import round_to_step
from _live_helpers import SYM, first_hit, make_bot, ms, script, settings, step
from _live_fixtures import _quiet, data, ledger  # noqa: F401  (fixtures)

N_ROWS, START = 2400, 2000
TAKER = 0.00055  # Bybit VIP 0 taker fee of perpetuals (the simulator's)


@pytest.fixture
def sim(data):
    s = BybitSim(candles=data[0], funding=data[1], mark=data[2], start_bar=START)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def bybit_settings(sim, tmp_path, **kw):
    return settings(sim, tmp_path, exchange="bybit", api_passphrase=None, **kw)


def run(coro):
    return asyncio.run(coro)


def kinds(orders: list[dict]) -> list[tuple[str, float]]:
    return sorted((venue_params.protection_kind("bybit", o), o["triggerPrice"]) for o in orders)


def test_bybit_entry_carries_its_stops_and_the_stop_closes_the_trade(sim, tmp_path, ledger, data):
    candles = data[0]
    side = next(s for s in (1, -1) if first_hit(candles, START, s)[0] == "stop_loss")
    _, hit, sl, tp = first_hit(candles, START, side)
    s = bybit_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    seen, closer = [], []

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): side})
        try:
            (first,) = await step(sim, bot)  # the entry at START's close with its attached TP/SL
            seen.append(await bot.ex.protection_orders())
            while bot.trade is not None or bot.pending is not None:
                await step(sim, bot)
                if bot.trade is not None:
                    seen.append(await bot.ex.protection_orders())
                    assert bot.report is not None and bot.report.clean, bot.report.summary()
            last_fill = sorted(await bot.ex.my_fills(ms(candles, START)), key=lambda f: f["timestamp"])[-1]
            closer.append(await bot.ex.order_by_id(last_fill["order"]))  # the venue's word for the exit
            return first
        finally:
            await bot.ex.close()

    first = run(go())
    orders = ledger.orders(rid).set_index("client_order_id")
    assert orders.loc[first["orders"][0], "status"] == "filled"
    attached, tracked = seen[0], seen[1]
    assert kinds(attached) == kinds(tracked) == [("stop_loss", sl), ("take_profit", tp)]
    assert sorted(o["info"]["stopOrderType"] for o in attached) == ["StopLoss", "TakeProfit"]
    assert all(o["clientOrderId"] is None for o in attached)  # Bybit's system orders of the position
    assert all(o["info"]["stopOrderType"] == "Stop" and o["reduceOnly"] for o in tracked)
    assert {o["clientOrderId"] for o in tracked} <= set(orders.index)  # replaced by perpbot's own, once
    assert all(sorted(o["id"] for o in cycle) == sorted(o["id"] for o in tracked) for cycle in seen[1:])
    assert len(seen) == hit - START  # open from START's close to the candle that reached the stop
    trade = ledger.trades(rid).iloc[0]
    entry, qty = float(candles.close.iloc[START]), float(trade.qty)
    fees = qty * entry * TAKER + qty * sl * TAKER
    gross = side * qty * (sl - entry)
    assert (trade.side, trade.entry_price, trade.exit_price, trade.exit_reason) == (side, entry, sl, "stop_loss")
    assert trade.exit_bar - trade.entry_bar == hit - (START + 1)
    assert trade.fees == pytest.approx(fees, abs=1e-9) and trade.gross_pnl == pytest.approx(gross, abs=1e-9)
    assert trade.funding == 0.0 and trade.pnl == pytest.approx(gross - fees, abs=1e-9)  # no funding time crossed
    assert sim.wallet.balance == pytest.approx(1000.0 + trade.pnl, abs=1e-9)
    assert sim.state["position"] is None
    assert (closer[0]["info"]["stopOrderType"], closer[0]["clientOrderId"]) == (
        "Stop", next(o["clientOrderId"] for o in tracked if o["triggerPrice"] == sl))
    assert venue_params.exit_reason("bybit", closer[0]) == "stop_loss"
    by_cid = {o["clientOrderId"]: o for o in tracked}
    assert orders.loc[[c for c, o in by_cid.items() if o["triggerPrice"] == sl][0], "status"] == "triggered"
    assert orders.loc[[c for c, o in by_cid.items() if o["triggerPrice"] == tp][0], "status"] == "canceled"


def test_bybit_restart_adopts_the_position_with_its_stops_and_sends_nothing(sim, tmp_path, ledger, data):
    candles = data[0]
    s = bybit_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    _, _, sl, tp = first_hit(candles, START, -1)

    async def first_life():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): -1})
        try:
            await step(sim, bot, 2)  # a short at START's close, its own stops once taken over; then the process dies
            return await bot.ex.protection_orders()
        finally:
            await bot.ex.close()

    stops = run(first_life())
    requests = len(sim.requests)

    async def second_life():
        bot = await make_bot(sim, s, ledger, rid, resume=True)
        try:
            return bot.report, bot.trade, await bot.ex.protection_orders()
        finally:
            await bot.ex.close()

    report, trade, again = run(second_life())
    if sim.state["position"] is None:
        pytest.fail("the data closed the position before the restart; pick another START")
    assert report.clean and report.has_stop and report.position.side == -1  # nothing to repair, nothing cancelled
    assert (trade.side, trade.stop_loss, trade.take_profit) == (-1, sl, tp)  # the levels of its stop orders
    assert kinds(again) == [("stop_loss", sl), ("take_profit", tp)]
    assert sorted(o["id"] for o in again) == sorted(o["id"] for o in stops)
    posts = [r for r in sim.requests[requests:] if r["method"] == "POST" and "/order/" in r["path"]]
    assert posts == []  # no order, stop or take-profit sent twice


def test_bybit_position_without_its_stop_gets_one_at_the_configured_distance(sim, tmp_path, ledger, data):
    candles = data[0]
    s = bybit_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    entry = float(candles.close.iloc[START])
    want = float(round_to_step(entry * 0.99, 0.01))

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): 1})
        try:
            await step(sim, bot, 2)  # the entry, then its fill taken over: perpbot's own stops
            stop = next(o for o in await bot.ex.protection_orders() if bot.ex.kind_of(o) == "stop_loss")
            await bot.ex.ex.cancel_order(stop["id"], SYM)  # someone removes it on the venue
            await step(sim, bot)
            return bot.report, await bot.ex.protection_orders(), stop
        finally:
            await bot.ex.close()

    report, after, removed = run(go())
    if sim.state["position"] is None:
        pytest.fail("the data closed the position before the check; pick another START")
    assert report.stop_placed == want and report.has_stop and report.take_profit_placed is None
    assert kinds(after) == [("stop_loss", want), ("take_profit", float(round_to_step(entry * 1.02, 0.01)))]
    assert removed["id"] not in {o["id"] for o in after}
    assert all(o["clientOrderId"] in set(ledger.orders(rid).client_order_id) for o in after)


def test_bybit_places_no_trailing_stop(sim, tmp_path, ledger, data):
    candles = data[0]
    s = bybit_settings(sim, tmp_path, trailing_stop=0.5)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): 1})
        try:
            await step(sim, bot, 2)
            return await bot.ex.protection_orders(), bot.report
        finally:
            await bot.ex.close()

    after, report = run(go())
    assert "bybit" in venue_params.LIVE_VENUES and "bybit" not in venue_params.TRAILING_VENUES
    assert [venue_params.protection_kind("bybit", o) for o in sorted(after, key=lambda o: o["triggerPrice"])] == [
        "stop_loss", "take_profit"]
    assert report.clean and not any(r["path"] == "/v5/position/trading-stop" for r in sim.requests)


def test_bybit_entry_answered_after_the_timeout_is_looked_up_not_sent_twice(sim, tmp_path, ledger, data):
    candles = data[0]
    s = bybit_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): 1})
        bot.ex.ex.timeout = 500  # ms
        sim.faults.timeout_after_accept(delay=1.5, endpoint="POST /v5/order/create")  # taken, then a slow answer
        try:
            (rec,) = await step(sim, bot)
            return rec, await bot.ex.protection_orders()
        finally:
            await bot.ex.close()

    rec, stops = run(go())
    cid = rec["orders"][0]
    posted = [r for r in sim.requests if r["method"] == "POST" and r["path"] == "/v5/order/create"]
    assert len(posted) == 1 and cid in str(posted[0])  # sent once; the look-up by client id found it
    assert ledger.orders(rid).set_index("client_order_id").loc[cid, "status"] == "filled"
    assert sorted(o["info"]["stopOrderType"] for o in stops) == ["StopLoss", "TakeProfit"]
