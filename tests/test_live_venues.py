"""The live loop (LiveBot) on Binance USDⓈ-M, Bybit (v5, linear, unified account) and OKX: each venue's local
simulator (:mod:`perpbot.devtools.binance_sim` / ``bybit_sim`` / ``okx_sim``, the Bitget simulator's accounting
behind the venue's protocol) and the real ccxt client (OKX in demo mode); what differs between the venues is in
their profile (``tests/_venue_profiles.py``).

* an entry is a market order with its stop-loss / take-profit: Binance's own reduce-only ``STOP_MARKET`` /
  ``TAKE_PROFIT_MARKET`` algo orders placed at once, which stay; Bybit's attached position TP/SL (no client
  ids) and OKX's attached ``oco`` algo order, which perpbot replaces once, after the fill, by its own
  reduce-only conditional orders (Bybit ``Stop``, OKX ``conditional``). Client ids are the ledger's, one
  stop-loss and one take-profit at any time, every cycle's reconciliation clean, none placed twice; the stop
  triggers and the trade closes with exit reason ``stop_loss`` read from the order the venue says closed it
  (Binance ``origType``, Bybit ``stopOrderType``, OKX the algo order's ``actualSide``), at the stop, fees at
  the venue's taker rate, PnL = the wallet's change, all worked out by hand from the real candles;
* a restart adopts the position with the levels of its stop orders and sends nothing;
* a position whose stop was cancelled on the venue gets a stop at the configured distance;
* the trailing stop: Binance's ``TRAILING_STOP_MARKET`` algo order with the configured callback rate; none on
  Bybit (no client id can be attached to its trailing stop) nor OKX (none perpbot can list with its stops);
* an entry answered after the client's timeout is found by its client id, not sent twice.
"""

from __future__ import annotations

import asyncio

import pytest

from perpbot.exchange import venue_params
from perpbot.sim.accounting import round_to_step
from _live_helpers import SYM, first_hit, make_bot, ms, script, step
from _live_fixtures import _quiet, data, ledger  # noqa: F401  (fixtures)
from _sim_fixtures import running_sim
from _venue_profiles import PROFILES

N_ROWS, START = 2400, 2000
ALL = pytest.mark.parametrize("venue", PROFILES, ids=lambda p: p.ccxt_id)
TRAILING = [p for p in PROFILES if p.trailing_request is None]
NO_TRAILING = [p for p in PROFILES if p.trailing_request is not None]


@pytest.fixture
def sim(venue, data):
    with running_sim(data, START, cls=venue.sim) as s:
        yield s


def drive(sim, s, ledger, rid, body, signals: dict | None = None, resume: bool = False):
    """``await body(bot)`` with a started bot (its calls scripted: {candle open ms: signal}), closed after."""
    async def go():
        bot = await make_bot(sim, s, ledger, rid, resume=resume)
        if signals:
            script(bot, signals)
        try:
            return await body(bot)
        finally:
            await bot.ex.close()
    return asyncio.run(go())


def open_run(ledger):
    return ledger.start_run("live", "ema-cross", SYM, "5m")


@ALL
def test_entry_carries_its_stops_and_the_stop_closes_the_trade(venue, sim, tmp_path, ledger, data):
    candles = data[0]
    side = next(s for s in (1, -1) if first_hit(candles, START, s)[0] == "stop_loss")
    _, hit, sl, tp = first_hit(candles, START, side)
    rid = open_run(ledger)
    seen, closer = [], []

    async def body(bot):
        (first,) = await step(sim, bot)  # the entry at START's close, its stops at once
        seen.append(await bot.ex.protection_orders())
        while bot.trade is not None or bot.pending is not None:
            await step(sim, bot)
            if bot.trade is not None:
                seen.append(await bot.ex.protection_orders())
                assert bot.report is not None and bot.report.clean, bot.report.summary()
        last_fill = sorted(await bot.ex.my_fills(ms(candles, START)), key=lambda f: f["timestamp"])[-1]
        closer.append(await bot.ex.order_by_id(last_fill["order"]))
        closer.append(await venue_params.exit_order(bot.ex.ex, SYM, closer[0]))  # the venue's word for the exit
        return first

    first = drive(sim, venue.settings(sim, tmp_path), ledger, rid, body, {ms(candles, START): side})
    orders = ledger.orders(rid).set_index("client_order_id")
    entry_cid = first["orders"][0]
    assert orders.loc[entry_cid, "status"] == "filled"
    if venue.demo_path is not None:
        assert all(r["demo"] for r in sim.requests if venue.demo_path in r["path"])
    attached, own = seen[0], seen[1 if venue.replaces else 0]
    assert venue.shape(attached) == venue.expected(venue.entry_stops, sl, tp)
    assert all(o["reduceOnly"] and o["side"] == ("sell" if side > 0 else "buy") for o in attached + own)
    if not venue.attached_ids:
        assert all(o["clientOrderId"] is None for o in attached)  # the venue's system orders of the position
    assert venue.shape(own) == venue.expected(venue.own_stops, sl, tp)
    if venue.replaces:  # replaced by perpbot's own, once
        assert not {o["id"] for o in attached} & {o["id"] for o in own}
    assert {o["clientOrderId"] for o in own} == {venue.cid(c) for c in orders.index if c != entry_cid}
    ids = sorted(o["id"] for o in own)
    assert all(sorted(o["id"] for o in cycle) == ids for cycle in seen[1 if venue.replaces else 0:])  # kept
    assert len(seen) == hit - START  # open from START's close to the candle that reached the stop
    trade = ledger.trades(rid).iloc[0]
    entry, qty = float(candles.close.iloc[START]), float(trade.qty)
    fees = qty * entry * venue.taker + qty * sl * venue.taker
    gross = side * qty * (sl - entry)
    assert (trade.side, trade.entry_price, trade.exit_price, trade.exit_reason) == (side, entry, sl, "stop_loss")
    assert trade.exit_bar - trade.entry_bar == hit - (START + 1)  # filled at the close of START = open of START + 1
    assert trade.fees == pytest.approx(fees, abs=1e-9) and trade.gross_pnl == pytest.approx(gross, abs=1e-9)
    assert trade.funding == 0.0 and trade.pnl == pytest.approx(gross - fees, abs=1e-9)  # no funding time crossed
    assert sim.wallet.balance == pytest.approx(1000.0 + trade.pnl, abs=1e-9)
    assert sim.state["position"] is None
    by_kind = {venue.kind(o): o for o in own}
    venue.check_exit(closer[0], closer[1], by_kind["stop_loss"])
    assert venue_params.exit_reason(venue.ccxt_id, closer[1]) == "stop_loss"
    ledger_cid = {venue.cid(c): c for c in orders.index}
    assert orders.loc[ledger_cid[by_kind["stop_loss"]["clientOrderId"]], "status"] == "triggered"
    assert orders.loc[ledger_cid[by_kind["take_profit"]["clientOrderId"]], "status"] == "canceled"


@ALL
def test_restart_adopts_the_position_with_its_stops_and_sends_nothing(venue, sim, tmp_path, ledger, data):
    candles = data[0]
    s = venue.settings(sim, tmp_path)
    rid = open_run(ledger)
    _, _, sl, tp = first_hit(candles, START, -1)

    async def first_life(bot):  # a short at START's close and its stops (perpbot's own after 2); then it dies
        (rec, *_) = await step(sim, bot, venue.restart_steps)
        return rec, await bot.ex.protection_orders()

    rec, stops = drive(sim, s, ledger, rid, first_life, {ms(candles, START): -1})
    requests = len(sim.requests)

    async def second_life(bot):
        return bot.report, bot.trade, await bot.ex.protection_orders()

    report, trade, again = drive(sim, s, ledger, rid, second_life, resume=True)
    if sim.state["position"] is None:
        pytest.fail("the data closed the position before the restart; pick another START")
    types = venue.entry_stops if venue.restart_steps == 1 else venue.own_stops
    assert venue.shape(stops) == venue.expected(types, sl, tp)
    assert report.resolved == []  # settled in its own cycle (a market order fills on arrival)
    assert ledger.orders(rid).set_index("client_order_id").loc[rec["orders"][0], "status"] == "filled"
    assert report.clean and report.has_stop and report.position.side == -1  # nothing to repair, nothing cancelled
    assert (trade.side, trade.stop_loss, trade.take_profit) == (-1, sl, tp)  # the levels of its stop orders
    assert sorted(o["id"] for o in again) == sorted(o["id"] for o in stops)
    posts = [r["path"] for r in sim.requests[requests:] if r["method"] in ("POST", "DELETE")]
    assert posts == []  # no order, stop or take-profit sent twice; the position keeps its leverage


@ALL
def test_position_without_its_stop_gets_one_at_the_configured_distance(venue, sim, tmp_path, ledger, data):
    candles = data[0]
    rid = open_run(ledger)
    entry = float(candles.close.iloc[START])
    want = float(round_to_step(entry * 0.99, 0.01))

    async def body(bot):
        await step(sim, bot, 2)  # the entry, then its fill taken over (Bybit, OKX: perpbot's own stops)
        stop = next(o for o in await bot.ex.protection_orders() if bot.ex.kind_of(o) == "stop_loss")
        await bot.ex.ex.cancel_order(stop["id"], SYM, dict(venue.cancel_params))  # someone removes it on the venue
        await step(sim, bot)
        return bot.report, await bot.ex.protection_orders(), stop

    report, after, removed = drive(sim, venue.settings(sim, tmp_path), ledger, rid, body, {ms(candles, START): 1})
    if sim.state["position"] is None:
        pytest.fail("the data closed the position before the check; pick another START")
    assert report.stop_placed == want and report.has_stop and report.take_profit_placed is None
    assert venue.shape(after) == venue.expected(venue.own_stops, want, float(round_to_step(entry * 1.02, 0.01)))
    assert removed["id"] not in {o["id"] for o in after}
    assert {o["clientOrderId"] for o in after} <= {venue.cid(c) for c in ledger.orders(rid).client_order_id}


def trailing_run(venue, sim, tmp_path, ledger, data):
    """A long at START's close with a 0.5 % trailing stop: (its protection orders and the report after the
    fill is taken over, the same one candle later, the run id)."""
    candles = data[0]
    rid = open_run(ledger)

    async def body(bot):
        await step(sim, bot, 2)  # the entry and its stops, then the fill taken over: the trailing stop
        if bot.trade is None:
            pytest.fail("the data closed the position before the check; pick another START")
        first, report = await bot.ex.protection_orders(), bot.report
        await step(sim, bot)
        return first, report, await bot.ex.protection_orders(), bot.report

    s = venue.settings(sim, tmp_path, trailing_stop=0.5)
    return (*drive(sim, s, ledger, rid, body, {ms(candles, START): 1}), rid)


@pytest.mark.parametrize("venue", TRAILING, ids=lambda p: p.ccxt_id)
def test_trailing_stop_is_a_trailing_algo_order_kept_beside_the_stops(venue, sim, tmp_path, ledger, data):
    first, _, later, report, rid = trailing_run(venue, sim, tmp_path, ledger, data)
    _, _, sl, tp = first_hit(data[0], START, 1)
    assert venue.ccxt_id in venue_params.TRAILING_VENUES
    trailing = [o for o in first if o["info"][venue.type_field] == "TRAILING_STOP_MARKET"]
    assert len(first) == 3 and len(trailing) == 1
    assert venue.shape([o for o in first if o not in trailing]) == venue.expected(venue.own_stops, sl, tp)
    info = trailing[0]["info"]
    entry = float(data[0].close.iloc[START])
    assert (float(info["callbackRate"]), float(info["activatePrice"]), info["side"]) == (0.5, entry, "SELL")
    assert trailing[0]["reduceOnly"] and trailing[0]["clientOrderId"] in set(ledger.orders(rid).client_order_id)
    if len(later) == 3:  # still open one candle later: nothing re-placed, nothing cancelled
        assert sorted(o["id"] for o in later) == sorted(o["id"] for o in first) and report.clean


@pytest.mark.parametrize("venue", NO_TRAILING, ids=lambda p: p.ccxt_id)
def test_no_trailing_stop_where_the_venue_has_none_and_the_stops_stay(venue, sim, tmp_path, ledger, data):
    first, report, _, _, _ = trailing_run(venue, sim, tmp_path, ledger, data)
    _, _, sl, tp = first_hit(data[0], START, 1)
    assert venue.ccxt_id in venue_params.LIVE_VENUES and venue.ccxt_id not in venue_params.TRAILING_VENUES
    assert [venue.kind(o) for o in sorted(first, key=lambda o: min(venue_params.protection_levels(
        venue.ccxt_id, o).values()))] == ["stop_loss", "take_profit"]
    assert venue.shape(first) == venue.expected(venue.own_stops, sl, tp) and report.clean
    assert not any(venue.trailing_request(r) for r in sim.requests)


@ALL
def test_entry_answered_after_the_timeout_is_looked_up_not_sent_twice(venue, sim, tmp_path, ledger, data):
    candles = data[0]
    rid = open_run(ledger)
    method, path = venue.order_endpoint.split(" ")

    async def body(bot):
        bot.ex.ex.timeout = 500  # ms
        sim.faults.timeout_after_accept(delay=1.5, endpoint=venue.order_endpoint)  # taken, then a slow answer
        (rec,) = await step(sim, bot)
        return rec, await bot.ex.protection_orders()

    rec, stops = drive(sim, venue.settings(sim, tmp_path), ledger, rid, body, {ms(candles, START): 1})
    cid = rec["orders"][0]
    posted = [r for r in sim.requests if r["method"] == method and r["path"] == path]
    assert len(posted) == 1 and venue.cid(cid) in posted[0]["body"]  # sent once; the look-up by client id found it
    assert ledger.orders(rid).set_index("client_order_id").loc[cid, "status"] == "filled"
    assert sorted(o["info"][venue.type_field] for o in stops) == list(venue.entry_stops)
    assert ("timeout", venue.order_endpoint) in sim.faults.fired
