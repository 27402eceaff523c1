"""The local Binance USDⓈ-M simulator, driven by the real, unpatched ccxt 4.5 async ``binanceusdm``.

Real SOLUSDT 5m candles, funding and 8h mark prices are replayed. Checks: market rules and
closed candles, margin mode / leverage / balance, a market buy at the last close with Binance's
taker fee, the position and its liquidation price (the accounting core's), stop-loss /
take-profit algo orders and their trigger (the actual order's origType, the other one expired,
the exit fill, the wallet by hand), trailing stops, cancel / lookups / duplicate ids, the
reduce-only rule, auth (bad signature, stale timestamp), funding income and the
timeout-after-accept fault.
"""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from perpbot.devtools.binance_sim import BinanceSim
from perpbot.sim.accounting import liquidation_price
from _sim_fixtures import (
    assert_auth_refusals, assert_clock_and_last_candles, assert_one_funding_payment, drive_client,
    long_stopped_by_hand, sim_module_fixtures,
)

SYM = "SOL/USDT:USDT"
N_ROWS = 1400
START = 1000        # 2025-04-10 11:20 UTC: the next funding (16:00) is 56 candles later
TAKER = 0.0005


_quiet, data, sim = sim_module_fixtures(BinanceSim, N_ROWS, START)


def drive(sim, body, **config):
    """Run ``await body(ex)`` with a real ccxt binanceusdm client pointed at ``sim``."""
    return drive_client(sim, lambda: ccxt.binanceusdm({"apiKey": sim.api_key, "secret": sim.api_secret,
                                                       "enableRateLimit": False,
                                                       "options": {"defaultType": "swap"}, **config}), body)


async def isolated_long(ex, qty=2, cid=None):
    try:
        await ex.set_margin_mode("isolated", SYM)
    except ccxt.MarginModeAlreadySet:
        pass
    await ex.set_leverage(10, SYM)
    return await ex.create_order(SYM, "market", "buy", qty, None, {"clientOrderId": cid} if cid else {})


def test_markets_candles_settings_and_balance(sim, data):
    candles = data[0]

    async def body(ex):
        m = ex.market(SYM)
        assert (m["precision"]["amount"], m["precision"]["price"]) == (1.0, 0.01)
        assert (m["limits"]["amount"]["min"], m["limits"]["cost"]["min"]) == (1.0, 5.0)
        await assert_clock_and_last_candles(ex, candles, START)
        await ex.set_margin_mode("isolated", SYM)
        with pytest.raises(ccxt.MarginModeAlreadySet):
            await ex.set_margin_mode("isolated", SYM)
        await ex.set_leverage(7, SYM)
        assert (await ex.fetch_leverage(SYM))["longLeverage"] == 7
        bal = await ex.fetch_balance()
        assert (bal["USDT"]["total"], bal["USDT"]["free"]) == (1000.0, 1000.0)
    drive(sim, body)
    assert sim.engine.leverage == 7 and sim.engine.margin_mode == "isolated"


def test_stop_loss_triggers_take_profit_expires(sim, data):
    c = data[0]
    close, stop, tp, k, exit_px, fee_in, fee_out = long_stopped_by_hand(c, START, TAKER)

    async def opened(ex):
        entry = await isolated_long(ex, cid="entry-1")
        assert (entry["status"], entry["average"], entry["filled"]) == ("closed", close, 2.0)
        trades = await ex.fetch_my_trades(SYM)
        assert trades[0]["fee"]["cost"] == pytest.approx(fee_in, abs=1e-12)
        assert trades[0]["fee"]["currency"] == "USDT"
        pos = (await ex.fetch_positions([SYM]))[0]
        assert (pos["entryPrice"], pos["contracts"], pos["side"], pos["marginMode"]) == (close, 2.0, "long", "isolated")
        assert pos["liquidationPrice"] == pytest.approx(
            liquidation_price(1, 2.0, close, 2 * close / 10, 0.005, TAKER), rel=1e-9)
        assert (await ex.fetch_positions([SYM], {"useV2": True}))[0]["leverage"] == 10
        sl = await ex.create_order(SYM, "market", "sell", 2, None,
                                   {"stopLossPrice": stop, "reduceOnly": True, "clientOrderId": "sl-1"})
        tpo = await ex.create_order(SYM, "market", "sell", 2, None,
                                    {"takeProfitPrice": tp, "reduceOnly": True, "clientOrderId": "tp-1"})
        listed = {o["clientOrderId"]: o for o in await ex.fetch_open_orders(SYM, params={"trigger": True})}
        assert set(listed) == {"sl-1", "tp-1"}
        assert (listed["sl-1"]["triggerPrice"], listed["sl-1"]["info"]["orderType"]) == (stop, "STOP_MARKET")
        assert (listed["tp-1"]["takeProfitPrice"], listed["tp-1"]["reduceOnly"]) == (tp, True)
        assert listed["sl-1"]["side"] == "sell" and listed["sl-1"]["status"] == "open"
        return sl["id"], tpo["id"]

    sl_id, tp_id = drive(sim, opened)
    sim.advance(k - START + 1)
    assert sim.engine.position is None

    async def closed(ex):
        sl = await ex.fetch_order(sl_id, SYM, {"trigger": True})
        assert (sl["status"], sl["info"]["algoStatus"]) == ("closed", "FINISHED")
        actual = await ex.fetch_order(sl["info"]["actualOrderId"], SYM)
        assert (actual["info"]["origType"], actual["info"]["type"], actual["average"]) == ("STOP_MARKET", "MARKET", exit_px)
        assert actual["reduceOnly"] is True
        tpo = await ex.fetch_order(tp_id, SYM, {"trigger": True})
        assert (tpo["status"], tpo["info"]["algoStatus"]) == ("expired", "EXPIRED")
        assert await ex.fetch_open_orders(SYM, params={"trigger": True}) == []
        out = (await ex.fetch_my_trades(SYM))[-1]
        assert (out["order"], out["side"], out["price"], out["amount"]) == (actual["id"], "sell", exit_px, 2.0)
        assert float(out["info"]["realizedPnl"]) == pytest.approx(2 * (exit_px - close), abs=1e-9)
        assert out["fee"]["cost"] == pytest.approx(fee_out, abs=1e-12)
        bal = await ex.fetch_balance()
        assert bal["USDT"]["total"] == pytest.approx(1000 - fee_in - fee_out + 2 * (exit_px - close), abs=1e-9)
        # lookups by client id; a missing one; a duplicate client id
        assert (await ex.fetch_order(None, SYM, {"clientOrderId": "entry-1"}))["info"]["orderId"] is not None
        with pytest.raises(ccxt.OrderNotFound):
            await ex.fetch_order(None, SYM, {"clientOrderId": "no-such-order"})
        with pytest.raises(ccxt.InvalidOrder, match="-4116"):
            await ex.create_order(SYM, "market", "buy", 1, None, {"clientOrderId": "entry-1"})
        return bal

    drive(sim, closed)
    assert sim.wallet.balance == pytest.approx(1000 - fee_in - fee_out + 2 * (exit_px - close), abs=1e-9)


def test_reduce_only_rule_cancel_and_trailing(sim):
    async def body(ex):
        await ex.set_margin_mode("isolated", SYM)
        with pytest.raises(ccxt.InvalidOrder, match="-2022"):  # no position to reduce
            await ex.create_order(SYM, "market", "sell", 2, None, {"stopLossPrice": 100.0, "reduceOnly": True})
        with pytest.raises(ccxt.InvalidOrder, match="-4164"):  # 1 SOL at 1 USDT: below the 5 USDT minimum notional
            await ex.create_order(SYM, "limit", "buy", 1, 1.0)
        await isolated_long(ex)
        last = sim.market.last
        with pytest.raises(ccxt.OrderImmediatelyFillable):  # a stop above the last price
            await ex.create_order(SYM, "market", "sell", 2, None, {"stopLossPrice": last + 1, "reduceOnly": True})
        sl = await ex.create_order(SYM, "market", "sell", 2, None, {"stopLossPrice": round(last * 0.9, 2),
                                                                       "reduceOnly": True})
        await ex.cancel_order(sl["id"], SYM, {"trigger": True})
        got = await ex.fetch_order(sl["id"], SYM, {"trigger": True})
        assert (got["status"], got["info"]["algoStatus"]) == ("canceled", "CANCELED")
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order(sl["id"], SYM, {"trigger": True})
        tr = await ex.create_order(SYM, "market", "sell", 2, None, {"trailingPercent": 0.5, "reduceOnly": True,
                                                                       "trailingTriggerPrice": last})
        assert (tr["info"]["orderType"], tr["info"]["callbackRate"], tr["info"]["activatePrice"]) == (
            "TRAILING_STOP_MARKET", "0.5", str(last))
        return tr["id"]

    tr_id = drive(sim, body)
    for _ in range(300):
        if sim.engine.position is None:
            break
        sim.advance()
    assert sim.engine.position is None

    async def after(ex):
        tr = await ex.fetch_order(tr_id, SYM, {"trigger": True})
        actual = await ex.fetch_order(tr["info"]["actualOrderId"], SYM)
        assert (tr["status"], actual["info"]["origType"]) == ("closed", "TRAILING_STOP_MARKET")
    drive(sim, after)


def test_auth_refusals(sim):
    assert_auth_refusals(drive, sim, [({"secret": "not-the-secret"}, ccxt.AuthenticationError, None),
                                      ({"apiKey": "not-the-key"}, ccxt.AuthenticationError, None)],
                         (ccxt.InvalidNonce, None))  # older than recvWindow


def test_funding_fee_income(sim, data):
    assert_one_funding_payment(drive, sim, data, START, isolated_long)


def test_timeout_after_accept_on_order_placement(sim):
    sim.faults.timeout_after_accept(delay=1.5, endpoint="POST /fapi/v1/order")

    async def body(ex):
        await ex.set_margin_mode("isolated", SYM)
        with pytest.raises(ccxt.RequestTimeout):
            await ex.create_order(SYM, "market", "buy", 2, None, {"clientOrderId": "lost-answer"})
        ex.timeout = 10_000
        got = await ex.fetch_order(None, SYM, {"clientOrderId": "lost-answer"})  # accepted all the same
        assert (got["status"], got["filled"]) == ("closed", 2.0)
    drive(sim, body, timeout=500)
    assert ("timeout", "POST /fapi/v1/order") in sim.faults.fired
