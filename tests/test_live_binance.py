"""The live loop (LiveBot) on Binance USDⓈ-M: the local Binance simulator (:mod:`perpbot.devtools.binance_sim`,
the Bitget simulator's accounting behind Binance's ``/fapi`` protocol) and the real ccxt ``binanceusdm`` client.

* an entry is a bare market order followed at once by its reduce-only ``STOP_MARKET`` / ``TAKE_PROFIT_MARKET``
  conditional (algo) orders, whose client ids are the ledger's; every cycle's reconciliation finds them (none
  placed twice, none cancelled as orphans); the stop triggers, and the trade closes with exit reason
  ``stop_loss`` (the triggered order's ``origType``) at the stop, fees at Binance's taker rate, PnL = the
  wallet's change, all worked out by hand from the real candles;
* a restart adopts the position with the levels of its algo orders and places nothing;
* a position whose stop was cancelled on the venue gets a ``STOP_MARKET`` at the configured distance;
* the trailing stop is a ``TRAILING_STOP_MARKET`` algo order with the configured callback rate.
"""

from __future__ import annotations

import asyncio

import pytest

from perpbot.devtools.binance_sim import BinanceSim
from perpbot.exchange import venue_params
from perpbot.sim.accounting import round_to_step
from _live_helpers import SYM, first_hit, make_bot, ms, script, settings, step
from _live_fixtures import _quiet, data, ledger  # noqa: F401  (fixtures)

N_ROWS, START = 2400, 2000
TAKER = 0.0005  # Binance USDⓈ-M VIP 0 taker fee (the simulator's)


@pytest.fixture
def sim(data):
    s = BinanceSim(candles=data[0], funding=data[1], mark=data[2], start_bar=START)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def binance_settings(sim, tmp_path, **kw):
    return settings(sim, tmp_path, exchange="binanceusdm", api_passphrase=None, **kw)


def run(coro):
    return asyncio.run(coro)


async def algo_orders(bot) -> list[dict]:
    return await bot.ex.protection_orders()


def test_binance_entry_carries_its_stops_and_the_stop_closes_the_trade(sim, tmp_path, ledger, data):
    candles = data[0]
    side = next(s for s in (1, -1) if first_hit(candles, START, s)[0] == "stop_loss")
    _, hit, sl, tp = first_hit(candles, START, side)
    s = binance_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    seen, closer = [], []

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): side})
        try:
            (first,) = await step(sim, bot)  # the entry at START's close, its stops at once
            seen.append(await algo_orders(bot))
            while bot.trade is not None or bot.pending is not None:
                await step(sim, bot)
                if bot.trade is not None:
                    seen.append(await algo_orders(bot))
                    assert bot.report is not None and bot.report.clean, bot.report.summary()
            last_fill = sorted(await bot.ex.my_fills(ms(candles, START)), key=lambda f: f["timestamp"])[-1]
            closer.append(await bot.ex.order_by_id(last_fill["order"]))  # the venue's word for the exit
            return first
        finally:
            await bot.ex.close()

    first = run(go())
    orders = ledger.orders(rid).set_index("client_order_id")
    assert orders.loc[first["orders"][0], "status"] == "filled"
    by_kind = {o["info"]["orderType"]: o for o in seen[0]}
    assert set(by_kind) == {"STOP_MARKET", "TAKE_PROFIT_MARKET"} and len(seen[0]) == 2
    assert (by_kind["STOP_MARKET"]["triggerPrice"], by_kind["TAKE_PROFIT_MARKET"]["triggerPrice"]) == (sl, tp)
    assert all(o["reduceOnly"] for o in seen[0])
    ids = [o["id"] for o in seen[0]]
    assert all(sorted(o["id"] for o in cycle) == sorted(ids) for cycle in seen)  # kept: never placed twice
    assert len(seen) == hit - START  # open from START's close to the candle that reached the stop
    trade = ledger.trades(rid).iloc[0]
    entry, qty = float(candles.close.iloc[START]), float(trade.qty)
    fees = qty * entry * TAKER + qty * sl * TAKER
    gross = side * qty * (sl - entry)
    assert (trade.side, trade.entry_price, trade.exit_price, trade.exit_reason) == (side, entry, sl, "stop_loss")
    assert trade.exit_bar - trade.entry_bar == hit - (START + 1)  # filled at the close of START = open of START + 1
    assert trade.fees == pytest.approx(fees, abs=1e-9) and trade.gross_pnl == pytest.approx(gross, abs=1e-9)
    assert trade.pnl == pytest.approx(gross - fees - trade.funding, abs=1e-9)
    assert sim.wallet.balance == pytest.approx(1000.0 + trade.pnl, abs=1e-9)
    assert sim.state["position"] is None
    assert closer[0]["info"]["origType"] == "STOP_MARKET" and venue_params.exit_reason("binanceusdm", closer[0]) == \
        "stop_loss"
    assert orders.loc[by_kind["STOP_MARKET"]["clientOrderId"], "status"] == "triggered"
    assert orders.loc[by_kind["TAKE_PROFIT_MARKET"]["clientOrderId"], "status"] == "canceled"


def test_binance_restart_adopts_the_position_with_its_algo_stops_and_sends_nothing(sim, tmp_path, ledger, data):
    candles = data[0]
    s = binance_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    _, _, sl, tp = first_hit(candles, START, -1)

    async def first_life():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): -1})
        try:
            (rec,) = await step(sim, bot)  # a short at START's close and its stops; then the process dies
            return rec, await algo_orders(bot)
        finally:
            await bot.ex.close()

    rec, stops = run(first_life())
    requests = len(sim.requests)

    async def second_life():
        bot = await make_bot(sim, s, ledger, rid, resume=True)
        try:
            return bot.report, bot.trade, await algo_orders(bot)
        finally:
            await bot.ex.close()

    report, trade, again = run(second_life())
    assert report.resolved == []  # settled in its own cycle (Binance fills a market order on arrival)
    assert ledger.orders(rid).set_index("client_order_id").loc[rec["orders"][0], "status"] == "filled"
    assert report.clean and report.has_stop and report.position.side == -1  # nothing to repair, nothing cancelled
    assert (trade.side, trade.stop_loss, trade.take_profit) == (-1, sl, tp)  # the levels of its algo orders
    assert sorted(o["id"] for o in again) == sorted(o["id"] for o in stops)
    posts = [r["path"] for r in sim.requests[requests:] if r["method"] in ("POST", "DELETE")]
    assert posts == []  # no order, stop or take-profit sent twice; the position keeps its leverage (symbolConfig)


def test_binance_position_without_its_stop_gets_one_at_the_configured_distance(sim, tmp_path, ledger, data):
    candles = data[0]
    s = binance_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    entry = float(candles.close.iloc[START])
    want = float(round_to_step(entry * 0.99, 0.01))

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): 1})
        try:
            await step(sim, bot, 2)  # the entry, then its fill taken over as the trade
            stop = next(o for o in await algo_orders(bot) if o["info"]["orderType"] == "STOP_MARKET")
            await bot.ex.ex.cancel_order(stop["id"], SYM, {"trigger": True})  # someone removes it on the venue
            await step(sim, bot)
            return bot.report, await algo_orders(bot), stop
        finally:
            await bot.ex.close()

    report, after, removed = run(go())
    if sim.state["position"] is None:
        pytest.fail("the data closed the position before the check; pick another START")
    assert report.stop_placed == want and report.has_stop and report.take_profit_placed is None
    kinds = sorted((o["info"]["orderType"], o["triggerPrice"]) for o in after)
    assert kinds == [("STOP_MARKET", want), ("TAKE_PROFIT_MARKET", float(round_to_step(entry * 1.02, 0.01)))]
    assert removed["id"] not in {o["id"] for o in after}


def test_binance_trailing_stop_is_a_trailing_algo_order_kept_beside_the_stops(sim, tmp_path, ledger, data):
    candles = data[0]
    s = binance_settings(sim, tmp_path, trailing_stop=0.5)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    entry = float(candles.close.iloc[START])

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): 1})
        try:
            await step(sim, bot, 2)  # the entry and its stops, then the fill taken over: the trailing stop
            if bot.trade is None:
                pytest.fail("the data closed the position before the check; pick another START")
            first = await algo_orders(bot)
            await step(sim, bot)
            return first, await algo_orders(bot), bot.report
        finally:
            await bot.ex.close()

    first, later, report = run(go())
    trailing = [o for o in first if o["info"]["orderType"] == "TRAILING_STOP_MARKET"]
    assert len(first) == 3 and len(trailing) == 1
    info = trailing[0]["info"]
    assert (float(info["callbackRate"]), float(info["activatePrice"]), info["side"]) == (0.5, entry, "SELL")
    assert trailing[0]["reduceOnly"] and trailing[0]["clientOrderId"] in set(ledger.orders(rid).client_order_id)
    if len(later) == 3:  # still open one candle later: nothing re-placed, nothing cancelled
        assert sorted(o["id"] for o in later) == sorted(o["id"] for o in first) and report.clean


def test_binance_entry_answered_after_the_timeout_is_looked_up_not_sent_twice(sim, tmp_path, ledger, data):
    candles = data[0]
    s = binance_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): 1})
        bot.ex.ex.timeout = 500  # ms
        sim.faults.timeout_after_accept(delay=1.5, endpoint="POST /fapi/v1/order")  # taken, then a slow answer
        try:
            (rec,) = await step(sim, bot)
            return rec, await algo_orders(bot)
        finally:
            await bot.ex.close()

    rec, stops = run(go())
    cid = rec["orders"][0]
    posted = [r for r in sim.requests if r["method"] == "POST" and r["path"] == "/fapi/v1/order"]
    assert len(posted) == 1 and cid in str(posted[0])  # sent once; the look-up by client id found it
    assert ledger.orders(rid).set_index("client_order_id").loc[cid, "status"] == "filled"
    assert sorted(o["info"]["orderType"] for o in stops) == ["STOP_MARKET", "TAKE_PROFIT_MARKET"]
