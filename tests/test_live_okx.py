"""The live loop (LiveBot) on OKX: the local OKX simulator (:mod:`perpbot.devtools.okx_sim`, the Bitget
simulator's accounting behind OKX's API v5) and the real ccxt ``okx`` client in demo mode.

* an entry is a market order carrying its stop-loss / take-profit (``attachAlgoOrds``), which become one
  ``oco`` algo order when it fills; the next cycle takes the fill over and replaces that OCO by perpbot's
  own reduce-only ``conditional`` stop-loss and take-profit (client ids the ledger's, in OKX's form): one
  stop-loss and one take-profit at any time, every cycle's reconciliation clean, none placed twice; the stop
  triggers and the trade closes with exit reason ``stop_loss`` (the triggered algo order's ``actualSide``),
  at the stop, fees at OKX's taker rate, PnL = the wallet's change, all worked out by hand from the candles;
* a restart adopts the position with the levels of its algo orders (both from the OCO) and sends nothing;
* a position whose stop was cancelled on the venue gets a ``conditional`` stop at the configured distance;
* OKX has no trailing stop perpbot can list with its stops: the executor skips it, the stops stay;
* an entry answered after the client's timeout is found by its client id, not sent twice.
"""

from __future__ import annotations

import asyncio

import pytest

from perpbot.devtools.okx_sim import OkxSim
from perpbot.exchange import okx, venue_params
from perpbot.sim.accounting import round_to_step
from _live_helpers import SYM, make_bot, ms, script, settings, step
from _live_fixtures import _quiet, data, ledger  # noqa: F401  (fixtures)
from test_live_binance import first_hit

N_ROWS, START = 2400, 2000
TAKER = 0.0005  # OKX Lv1 (VIP 0) taker fee of USDT perpetual swaps (the simulator's)


@pytest.fixture
def sim(data):
    s = OkxSim(candles=data[0], funding=data[1], mark=data[2], start_bar=START)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def okx_settings(sim, tmp_path, **kw):
    return settings(sim, tmp_path, exchange="okx", **kw)


def run(coro):
    return asyncio.run(coro)


async def algo_orders(bot) -> list[dict]:
    return await bot.ex.protection_orders()


def kinds(orders: list[dict]) -> list[tuple]:
    """(ordType, kind, levels) of each algo order, sorted."""
    return sorted((o["info"]["ordType"], okx.protection_kind(o), tuple(sorted(okx.protection_levels(o).items())))
                  for o in orders)


def test_okx_entry_carries_its_stops_and_the_stop_closes_the_trade(sim, tmp_path, ledger, data):
    candles = data[0]
    side = next(s for s in (1, -1) if first_hit(candles, START, s)[0] == "stop_loss")
    _, hit, sl, tp = first_hit(candles, START, side)
    s = okx_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    seen, closer = [], []

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): side})
        try:
            (first,) = await step(sim, bot)  # the entry at START's close, its attached stops (one OCO) at once
            seen.append(await algo_orders(bot))
            while bot.trade is not None or bot.pending is not None:
                await step(sim, bot)
                if bot.trade is not None:
                    seen.append(await algo_orders(bot))
                    assert bot.report is not None and bot.report.clean, bot.report.summary()
            last_fill = sorted(await bot.ex.my_fills(ms(candles, START)), key=lambda f: f["timestamp"])[-1]
            closer.append(await bot.ex.order_by_id(last_fill["order"]))
            closer.append(await bot.ex.exit_order(last_fill["order"]))  # the venue's word for the exit
            return first
        finally:
            await bot.ex.close()

    first = run(go())
    orders = ledger.orders(rid).set_index("client_order_id")
    assert orders.loc[first["orders"][0], "status"] == "filled"
    assert all(sim.requests[k]["demo"] for k in range(len(sim.requests)) if "/trade/" in sim.requests[k]["path"])
    (oco,) = seen[0]  # the entry's attachAlgoOrds: one OCO holding both levels
    assert kinds(seen[0]) == [("oco", "stop_loss", (("stop_loss", sl), ("take_profit", tp)))]
    assert oco["reduceOnly"] and oco["side"] == ("sell" if side > 0 else "buy")
    own = seen[1]  # the fill taken over: perpbot's own conditional stop-loss and take-profit replace the OCO
    assert kinds(own) == [("conditional", "stop_loss", (("stop_loss", sl),)),
                          ("conditional", "take_profit", (("take_profit", tp),))]
    assert oco["id"] not in {o["id"] for o in own}
    assert {o["clientOrderId"] for o in own} == {okx.client_order_id(c) for c in orders.index if c != first["orders"][0]}
    ids = sorted(o["id"] for o in own)
    assert all(sorted(o["id"] for o in cycle) == ids for cycle in seen[1:])  # kept: never placed twice
    assert len(seen) == hit - START  # open from START's close to the candle that reached the stop
    trade = ledger.trades(rid).iloc[0]
    entry, qty = float(candles.close.iloc[START]), float(trade.qty)
    fees = qty * entry * TAKER + qty * sl * TAKER
    gross = side * qty * (sl - entry)
    assert (trade.side, trade.entry_price, trade.exit_price, trade.exit_reason) == (side, entry, sl, "stop_loss")
    assert trade.exit_bar - trade.entry_bar == hit - (START + 1)
    assert trade.fees == pytest.approx(fees, abs=1e-9) and trade.gross_pnl == pytest.approx(gross, abs=1e-9)
    assert trade.pnl == pytest.approx(gross - fees - trade.funding, abs=1e-9)
    assert sim.wallet.balance == pytest.approx(1000.0 + trade.pnl, abs=1e-9)
    assert sim.state["position"] is None
    fill_order, algo = closer
    assert fill_order["info"]["source"] == "7" and fill_order["info"]["algoId"] == algo["id"]
    assert algo["info"]["actualSide"] == "sl" and venue_params.exit_reason("okx", algo) == "stop_loss"
    by_kind = {okx.protection_kind(o): o for o in own}
    status = {c: orders.loc[c, "status"] for c in orders.index}
    assert status[next(c for c in orders.index if okx.client_order_id(c) == by_kind["stop_loss"]["clientOrderId"])] \
        == "triggered"
    assert status[next(c for c in orders.index if okx.client_order_id(c) == by_kind["take_profit"]["clientOrderId"])] \
        == "canceled"


def test_okx_restart_adopts_the_position_with_its_algo_stops_and_sends_nothing(sim, tmp_path, ledger, data):
    candles = data[0]
    s = okx_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    _, _, sl, tp = first_hit(candles, START, -1)

    async def first_life():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): -1})
        try:
            (rec,) = await step(sim, bot)  # a short at START's close with its OCO; then the process dies
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
    assert kinds(stops) == [("oco", "stop_loss", (("stop_loss", sl), ("take_profit", tp)))]
    assert report.resolved == []  # settled in its own cycle (a market order fills on arrival)
    assert ledger.orders(rid).set_index("client_order_id").loc[rec["orders"][0], "status"] == "filled"
    assert report.clean and report.has_stop and report.position.side == -1  # nothing to repair, nothing cancelled
    assert (trade.side, trade.stop_loss, trade.take_profit) == (-1, sl, tp)  # both levels of the OCO
    assert sorted(o["id"] for o in again) == sorted(o["id"] for o in stops)
    posts = [r for r in sim.requests[requests:] if r["method"] == "POST" and "/trade/" in r["path"]]
    assert posts == []  # no order, stop or take-profit sent twice


def test_okx_position_without_its_stop_gets_one_at_the_configured_distance(sim, tmp_path, ledger, data):
    candles = data[0]
    s = okx_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    entry = float(candles.close.iloc[START])
    want = float(round_to_step(entry * 0.99, 0.01))

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): 1})
        try:
            await step(sim, bot, 2)  # the entry, then its fill taken over: perpbot's own stops
            stop = next(o for o in await algo_orders(bot) if okx.protection_kind(o) == "stop_loss")
            await bot.ex.ex.cancel_order(stop["id"], SYM, {"trigger": True})  # someone removes it on the venue
            await step(sim, bot)
            return bot.report, await algo_orders(bot), stop
        finally:
            await bot.ex.close()

    report, after, removed = run(go())
    if sim.state["position"] is None:
        pytest.fail("the data closed the position before the check; pick another START")
    assert report.stop_placed == want and report.has_stop and report.take_profit_placed is None
    tp = float(round_to_step(entry * 1.02, 0.01))
    assert kinds(after) == [("conditional", "stop_loss", (("stop_loss", want),)),
                            ("conditional", "take_profit", (("take_profit", tp),))]
    assert removed["id"] not in {o["id"] for o in after}


def test_okx_trailing_stop_is_skipped_and_the_stops_stay(sim, tmp_path, ledger, data):
    candles = data[0]
    s = okx_settings(sim, tmp_path, trailing_stop=0.5)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): 1})
        try:
            await step(sim, bot, 2)
            if bot.trade is None:
                pytest.fail("the data closed the position before the check; pick another START")
            return await algo_orders(bot), bot.report
        finally:
            await bot.ex.close()

    algos, report = run(go())
    assert "okx" in venue_params.LIVE_VENUES and "okx" not in venue_params.TRAILING_VENUES
    assert sorted(okx.protection_kind(o) for o in algos) == ["stop_loss", "take_profit"] and report.clean
    assert not any("move_order_stop" in r["body"] for r in sim.requests)


def test_okx_entry_answered_after_the_timeout_is_looked_up_not_sent_twice(sim, tmp_path, ledger, data):
    candles = data[0]
    s = okx_settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): 1})
        bot.ex.ex.timeout = 500  # ms
        sim.faults.timeout_after_accept(delay=1.5, endpoint="POST /api/v5/trade/batch-orders")
        try:
            (rec,) = await step(sim, bot)
            return rec, await algo_orders(bot)
        finally:
            await bot.ex.close()

    rec, stops = run(go())
    cid = rec["orders"][0]
    posted = [r for r in sim.requests if r["method"] == "POST" and r["path"] == "/api/v5/trade/batch-orders"]
    assert len(posted) == 1 and okx.client_order_id(cid) in posted[0]["body"]  # sent once; found by client id
    assert ledger.orders(rid).set_index("client_order_id").loc[cid, "status"] == "filled"
    assert [o["info"]["ordType"] for o in stops] == ["oco"]
