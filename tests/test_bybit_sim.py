"""The local Bybit v5 simulator, driven by the real, unpatched ccxt 4.5 async ``bybit`` (unified account,
linear USDT perpetuals).

Real SOLUSDT 5m candles, funding and 8h mark prices are replayed. Checks: market rules and closed
candles, margin mode / leverage / balance, a market entry with its attached TP/SL filling at the last
close with Bybit's taker fee, the position (the accounting core's liquidation price), the attached TP/SL
listed as StopLoss / TakeProfit orders, reduce-only conditional orders with the client's orderLinkId, a
stop triggering at its level (the order keeps its id: stopOrderType / createType, the exit fill, the
wallet by hand), the TP/SL pair cancelled together, look-ups by client id, duplicate ids, the
reduce-only rule, auth (bad key, bad signature, stale timestamp) and the timeout-after-accept fault.
"""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from perpbot.devtools.bybit_sim import BybitSim
from perpbot.exchange import bybit as venue
from perpbot.sim.accounting import liquidation_price
from _sim_fixtures import (
    assert_auth_refusals, assert_clock_and_last_candles, drive_client, long_stopped_by_hand, sim_module_fixtures,
)

SYM = "SOL/USDT:USDT"
N_ROWS = 1400
START = 1000
TAKER = 0.00055


_quiet, data, sim = sim_module_fixtures(BybitSim, N_ROWS, START)


def drive(sim, body, **config):
    """Run ``await body(ex)`` with a real ccxt bybit client (perpbot's options) pointed at ``sim``."""
    return drive_client(sim, lambda: ccxt.bybit({"apiKey": sim.api_key, "secret": sim.api_secret,
                                                 "enableRateLimit": False,
                                                 "options": {"defaultType": "swap", **venue.CCXT_OPTIONS},
                                                 **config}), body)


def test_markets_candles_settings_and_balance(sim, data):
    candles = data[0]

    async def body(ex):
        m = ex.market(SYM)
        assert (m["precision"]["amount"], m["precision"]["price"], m["contractSize"]) == (0.1, 0.01, 1.0)
        assert (m["limits"]["amount"]["min"], m["limits"]["leverage"]["max"]) == (0.1, 100.0)
        await assert_clock_and_last_candles(ex, candles, START)
        with pytest.raises(ccxt.BadRequest, match="isolated margin only"):  # the account starts in cross margin
            await ex.create_order(SYM, "market", "buy", 1, None)
        await ex.set_margin_mode("isolated", SYM)
        await ex.set_margin_mode("isolated", SYM)  # already so: done
        await ex.set_leverage(7, SYM)
        with pytest.raises(ccxt.BadRequest, match="110043"):  # not modified (perpbot's NO_CHANGE_CODES)
            await ex.set_leverage(7, SYM)
        assert (await ex.fetch_leverage(SYM))["longLeverage"] == 7
        with pytest.raises(ccxt.NoChange):
            await ex.set_position_mode(False, SYM)
        assert not (await ex.fetch_positions([SYM]))[0]["hedged"]
        bal = await ex.fetch_balance()
        assert (bal["USDT"]["total"], bal["USDT"]["free"]) == (1000.0, 1000.0)
    drive(sim, body)
    assert sim.engine.leverage == 7 and sim.engine.margin_mode == "isolated"


def test_entry_with_tpsl_the_stop_triggers_and_keeps_its_order_id(sim, data):
    c = data[0]
    close, stop, tp, k, exit_px, fee_in, fee_out = long_stopped_by_hand(c, START, TAKER)

    async def opened(ex):
        await ex.set_margin_mode("isolated", SYM)  # leverage: the account's 10
        sent = await ex.create_order(SYM, "market", "buy", 2, None, venue.entry_params("entry-1", stop, tp, 10))
        entry = await venue.lookup(ex, SYM, "entry-1")
        assert (entry["id"], entry["status"], entry["average"], entry["filled"]) == (sent["id"], "closed", close, 2.0)
        assert entry["fee"]["cost"] == pytest.approx(fee_in, abs=1e-12)
        assert (entry["info"]["stopLoss"], entry["info"]["takeProfit"], entry["info"]["tpslMode"]) == (
            str(stop), str(tp), "Full")
        assert (entry["info"]["slTriggerBy"], entry["info"]["tpTriggerBy"]) == ("MarkPrice", "MarkPrice")
        trades = await ex.fetch_my_trades(SYM)
        assert (trades[0]["order"], trades[0]["price"]) == (sent["id"], close)
        assert trades[0]["fee"]["cost"] == pytest.approx(fee_in, abs=1e-12)
        pos = (await ex.fetch_positions([SYM]))[0]
        assert (pos["entryPrice"], pos["contracts"], pos["side"], pos["leverage"]) == (close, 2.0, "long", 10)
        assert (pos["stopLossPrice"], pos["takeProfitPrice"]) == (stop, tp)
        assert pos["liquidationPrice"] == pytest.approx(
            liquidation_price(1, 2.0, close, 2 * close / 10, 0.005, TAKER), rel=1e-9)
        listed = await ex.fetch_open_orders(SYM, params=venue.PROTECTION_QUERY)
        kinds = {venue.protection_kind(o): o for o in listed}
        assert set(kinds) == {"stop_loss", "take_profit"} and len(listed) == 2
        assert (kinds["stop_loss"]["triggerPrice"], kinds["take_profit"]["triggerPrice"]) == (stop, tp)
        assert kinds["stop_loss"]["info"]["stopOrderType"] == "StopLoss" and kinds["stop_loss"]["side"] == "sell"
        assert all(o["status"] == "open" and o["clientOrderId"] is None for o in listed)  # system orders
        return kinds["stop_loss"]["id"], kinds["take_profit"]["id"]

    sl_id, tp_id = drive(sim, opened)
    sim.advance(k - START + 1)
    assert sim.engine.position is None

    async def closed(ex):
        sl = await ex.fetch_order(sl_id, SYM)
        assert (sl["status"], sl["average"], sl["filled"], sl["info"]["createType"]) == (
            "closed", exit_px, 2.0, "CreateByStopLoss")
        assert venue.exit_reason(sl) == "stop_loss"
        assert (await ex.fetch_order(tp_id, SYM))["info"]["orderStatus"] == "Deactivated"  # closed with the position
        assert await ex.fetch_open_orders(SYM, params=venue.PROTECTION_QUERY) == []
        out = (await ex.fetch_my_trades(SYM))[-1]
        assert (out["order"], out["side"], out["price"], out["amount"]) == (sl_id, "sell", exit_px, 2.0)
        assert out["fee"]["cost"] == pytest.approx(fee_out, abs=1e-12)
        bal = await ex.fetch_balance()
        assert bal["USDT"]["total"] == pytest.approx(1000 - fee_in - fee_out + 2 * (exit_px - close), abs=1e-9)
        with pytest.raises(ccxt.OrderNotFound):
            await venue.lookup(ex, SYM, "no-such-order")
        with pytest.raises(ccxt.InvalidOrder, match="110072"):  # a duplicate orderLinkId
            await ex.create_order(SYM, "market", "buy", 1, None, {"clientOrderId": "entry-1"})
    drive(sim, closed)
    assert sim.wallet.balance == pytest.approx(1000 - fee_in - fee_out + 2 * (exit_px - close), abs=1e-9)


def test_protection_orders_reduce_only_rule_and_the_pair_cancelled_together(sim):
    async def body(ex):
        await ex.set_margin_mode("isolated", SYM)
        with pytest.raises(ccxt.InvalidOrder, match="110017"):  # no position to reduce
            await ex.create_order(SYM, "market", "sell", 2, None, venue.protection_params("stop_loss", "x", 100.0))
        last = sim.market.last
        await ex.create_order(SYM, "market", "sell", 3, None, venue.entry_params(
            "short-1", round(last * 1.02, 2), round(last * 0.97, 2), 10))
        with pytest.raises(ccxt.InvalidOrder, match="110093"):  # a take-profit above the price of a short
            await ex.create_order(SYM, "market", "buy", 3, None, venue.protection_params("take_profit", "y", last + 1))
        sl = await ex.create_order(SYM, "market", "buy", 3, None,
                                   venue.protection_params("stop_loss", "pb1-9-0", round(last * 1.01, 2)))
        mine = next(o for o in await ex.fetch_open_orders(SYM, params=venue.PROTECTION_QUERY)
                    if o["clientOrderId"] == "pb1-9-0")
        assert (mine["id"], venue.protection_kind(mine), mine["triggerPrice"], mine["reduceOnly"], mine["amount"]) == (
            sl["id"], "stop_loss", round(last * 1.01, 2), True, 3.0)
        assert mine["info"]["stopOrderType"] == "Stop" and mine["info"]["triggerBy"] == "MarkPrice"
        preset = next(o for o in await ex.fetch_open_orders(SYM, params=venue.PROTECTION_QUERY)
                      if o["info"]["stopOrderType"] == "StopLoss")
        await ex.cancel_order(preset["id"], SYM, venue.cancel_protection_params(preset))  # the pair goes together
        left = await ex.fetch_open_orders(SYM, params=venue.PROTECTION_QUERY)
        assert [o["clientOrderId"] for o in left] == ["pb1-9-0"]
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order(preset["id"], SYM)
        assert [o["id"] for o in await ex.fetch_open_orders(SYM)] == [sl["id"]]  # no filter: every open order
    drive(sim, body)


def test_auth_refusals(sim):
    assert_auth_refusals(drive, sim, [({"secret": "not-the-secret"}, ccxt.AuthenticationError, "10004"),
                                      ({"apiKey": "not-the-key"}, ccxt.AuthenticationError, "10003")],
                         (ccxt.InvalidNonce, "10002"))  # older than recv_window


def test_timeout_after_accept_on_order_placement(sim):
    sim.faults.timeout_after_accept(delay=1.5, endpoint="POST /v5/order/create")

    async def body(ex):
        await ex.set_margin_mode("isolated", SYM)
        with pytest.raises(ccxt.RequestTimeout):
            await ex.create_order(SYM, "market", "buy", 2, None, venue.entry_params("lost-answer", None, None, 10))
        ex.timeout = 10_000
        got = await venue.lookup(ex, SYM, "lost-answer")  # accepted all the same
        assert (got["status"], got["filled"]) == ("closed", 2.0)
    drive(sim, body, timeout=500)
    assert ("timeout", "POST /v5/order/create") in sim.faults.fired
