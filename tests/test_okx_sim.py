"""The local OKX simulator (:mod:`perpbot.devtools.okx_sim`), driven by the real, unpatched ccxt 4.5 async
``okx`` client in demo mode (the ``x-simulated-trading: 1`` header).

Real SOLUSDT 5m candles, funding and 8h mark prices are replayed. Checks: the instrument's rules as ccxt
sees them (contract size 1), closed candles, leverage / position mode / balance, a market entry carrying
its stop-loss / take-profit (``attachAlgoOrds``) filling at the last close with OKX's taker fee, the
position, the attached TP/SL listed as one OCO algo order and cancelled, a reduce-only conditional stop
triggering at its level (the exit fill, the algo order's ``actualSide``, the wallet by hand), look-ups by
client id, duplicate client ids, auth refusals (bad signature, stale timestamp), funding bills and the
timeout-after-accept fault.
"""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from perpbot.devtools.okx_sim import OkxSim
from perpbot.sim.accounting import liquidation_price
from _sim_fixtures import (
    assert_auth_refusals, assert_clock_and_last_candles, assert_one_funding_payment, drive_client,
    long_stopped_by_hand, sim_module_fixtures,
)

SYM = "SOL/USDT:USDT"
N_ROWS = 1400
START = 1000        # 2025-04-10 11:20 UTC: the next funding (16:00) is 56 candles later
TAKER = 0.0005
ALGOS = {"trigger": True, "ordType": "conditional,oco"}


_quiet, data, sim = sim_module_fixtures(OkxSim, N_ROWS, START)


def okx_client(sim, **config):
    ex = ccxt.okx({"apiKey": sim.api_key, "secret": sim.api_secret, "password": sim.passphrase,
                   "enableRateLimit": False, "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}},
                   **config})
    ex.set_sandbox_mode(True)
    return ex


def drive(sim, body, **config):
    """Run ``await body(ex)`` with a real ccxt okx client (demo mode) pointed at ``sim``."""
    return drive_client(sim, lambda: okx_client(sim, **config), body)


async def isolated_long(ex, qty=2, cid=None, **params):
    await ex.set_leverage(10, SYM, {"marginMode": "isolated"})
    return await ex.create_order(SYM, "market", "buy", qty, None,
                                 {"marginMode": "isolated", **({"clientOrderId": cid} if cid else {}), **params})


def test_instrument_candles_settings_and_balance(sim, data):
    candles = data[0]

    async def body(ex):
        m = ex.market(SYM)
        assert (m["id"], m["contractSize"], m["linear"], m["settle"]) == ("SOL-USDT-SWAP", 1.0, True, "USDT")
        assert (m["precision"]["amount"], m["precision"]["price"], m["limits"]["amount"]["min"]) == (0.01, 0.01, 0.01)
        assert (m["taker"], m["maker"], m["limits"]["leverage"]["max"]) == (0.0005, 0.0002, 50)
        await assert_clock_and_last_candles(ex, candles, START, since=True)
        assert len(await ex.fetch_ohlcv(SYM, "5m", int(candles.timestamp.iloc[START - 1].timestamp() * 1000), 5)) == 1
        await ex.set_margin_mode("isolated", SYM, {"lever": 7})  # OKX: set-leverage with mgnMode
        assert (await ex.fetch_position_mode(SYM))["hedged"] is False
        await ex.set_position_mode(False, SYM)
        with pytest.raises(ccxt.BadRequest):
            await ex.set_position_mode(True, SYM)  # no hedge mode in the simulator
        with pytest.raises(ccxt.BadRequest):
            await ex.set_leverage(5, SYM, {"marginMode": "cross"})
        bal = await ex.fetch_balance()
        assert (bal["USDT"]["total"], bal["USDT"]["free"]) == (1000.0, 1000.0)
    drive(sim, body)
    assert sim.engine.leverage == 7 and all(r["demo"] for r in sim.requests if r["path"].startswith("/api/v5/acc"))


def test_entry_with_attached_tpsl_and_the_conditional_stop_triggering(sim, data):
    c = data[0]
    close, stop, tp0, k, exit_px, fee_in, fee_out = long_stopped_by_hand(c, START, TAKER)
    sl0 = round(close * 0.98, 2)  # the entry's attached stop, replaced by the conditional one at ``stop``

    async def opened(ex):
        attach = {"stopLoss": {"triggerPrice": sl0, "type": "market", "triggerPriceType": "mark"},
                  "takeProfit": {"triggerPrice": tp0, "type": "market", "triggerPriceType": "mark"}}
        await isolated_long(ex, cid="entry1", **attach)
        entry = await ex.fetch_order(None, SYM, {"clientOrderId": "entry1"})
        assert (entry["status"], entry["average"], entry["filled"], entry["clientOrderId"]) == ("closed", close, 2.0,
                                                                                              "entry1")
        assert entry["fee"]["cost"] == pytest.approx(fee_in, abs=1e-12)
        assert (entry["stopLossPrice"], entry["takeProfitPrice"]) == (sl0, tp0)
        trades = await ex.fetch_my_trades(SYM)
        assert trades[0]["fee"]["cost"] == pytest.approx(fee_in, abs=1e-12) and trades[0]["price"] == close
        pos = (await ex.fetch_positions([SYM]))[0]
        assert (pos["entryPrice"], pos["contracts"], pos["side"], pos["marginMode"], pos["leverage"]) == \
            (close, 2.0, "long", "isolated", 10)
        assert pos["initialMargin"] == pytest.approx(2 * close / 10, abs=1e-9)
        assert pos["liquidationPrice"] == pytest.approx(
            liquidation_price(1, 2.0, close, 2 * close / 10, 0.005, TAKER), rel=1e-9)
        (oco,) = await ex.fetch_open_orders(SYM, params=ALGOS)  # the attached TP/SL: one OCO algo order
        assert (oco["type"], oco["stopLossPrice"], oco["takeProfitPrice"], oco["side"], oco["reduceOnly"]) == \
            ("oco", sl0, tp0, "sell", True)
        assert oco["info"]["slTriggerPxType"] == "mark" and oco["amount"] == 2.0
        await ex.cancel_order(oco["id"], SYM, {"trigger": True})
        assert await ex.fetch_open_orders(SYM, params=ALGOS) == []
        sl = await ex.create_order(SYM, "market", "sell", 2, None, {
            "stopLossPrice": stop, "slTriggerPxType": "mark", "reduceOnly": True, "marginMode": "isolated",
            "clientOrderId": "sl1", "algoClOrdId": "sl1"})
        (listed,) = await ex.fetch_open_orders(SYM, params=ALGOS)
        assert (listed["id"], listed["clientOrderId"], listed["type"], listed["stopLossPrice"]) == \
            (sl["id"], "sl1", "conditional", stop)
        with pytest.raises(ccxt.InvalidOrder):  # a duplicate client id: 51016
            await ex.create_order(SYM, "market", "sell", 2, None, {
                "stopLossPrice": stop, "reduceOnly": True, "marginMode": "isolated", "clientOrderId": "sl1"})
        with pytest.raises(ccxt.InvalidOrder):
            await ex.create_order(SYM, "market", "buy", 1, None, {"marginMode": "isolated", "clientOrderId": "entry1"})
        with pytest.raises(ccxt.OrderNotFound):
            await ex.fetch_order(None, SYM, {"clientOrderId": "nosuchorder"})
        return sl["id"]

    sl_id = drive(sim, opened)
    sim.advance(k - START + 1)
    assert sim.engine.position is None

    async def closed(ex):
        algo = await ex.fetch_order(sl_id, SYM, {"trigger": True})
        assert (algo["status"], algo["info"]["actualSide"], algo["info"]["state"]) == ("closed", "sl", "effective")
        trades = sorted(await ex.fetch_my_trades(SYM), key=lambda t: t["timestamp"])
        out = trades[-1]
        assert (out["side"], out["price"], out["amount"]) == ("sell", exit_px, 2.0)
        assert out["fee"]["cost"] == pytest.approx(fee_out, abs=1e-12)
        order = await ex.fetch_order(out["order"], SYM)
        assert (order["info"]["algoId"], order["info"]["source"], order["info"]["clOrdId"]) == (sl_id, "7", "sl1")
        assert await ex.fetch_positions([SYM]) == [] and await ex.fetch_open_orders(SYM, params=ALGOS) == []
        return (await ex.fetch_balance())["USDT"]["total"]

    total = drive(sim, closed)
    want = 1000.0 + 2 * (exit_px - close) - fee_in - fee_out
    assert total == pytest.approx(want, abs=1e-9) and sim.wallet.balance == pytest.approx(want, abs=1e-9)


def test_reduce_only_and_algo_rules(sim):
    async def body(ex):
        with pytest.raises(ccxt.ExchangeError, match="51169"):  # nothing to reduce
            await ex.create_order(SYM, "market", "sell", 1, None, {"marginMode": "isolated", "reduceOnly": True})
        with pytest.raises(ccxt.ExchangeError, match="51169"):  # a stop needs the position it closes
            await ex.create_order(SYM, "market", "sell", 1, None, {"stopLossPrice": 50, "reduceOnly": True,
                                                                   "marginMode": "isolated"})
        await isolated_long(ex, 1)
        with pytest.raises(ccxt.InvalidOrder, match="51280"):  # a long's stop above the last price
            await ex.create_order(SYM, "market", "sell", 1, None, {"stopLossPrice": 500, "reduceOnly": True,
                                                                   "marginMode": "isolated"})
        with pytest.raises(ccxt.BadRequest):  # cross margin is not simulated
            await ex.create_order(SYM, "market", "buy", 1, None, {"marginMode": "cross"})
        out = await ex.create_order(SYM, "market", "sell", 1, None, {"marginMode": "isolated", "reduceOnly": True,
                                                                      "clientOrderId": "exit1"})
        got = await ex.fetch_order(out["id"], SYM)
        assert (got["status"], got["reduceOnly"], got["clientOrderId"]) == ("closed", True, "exit1")
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order(out["id"], SYM)  # filled: 51402
    drive(sim, body)
    assert sim.engine.position is None


def test_auth_refusals(sim):
    assert_auth_refusals(drive, sim, [({"secret": "not-the-secret"}, ccxt.AuthenticationError, None),
                                      ({"apiKey": "not-the-key"}, ccxt.AuthenticationError, None),
                                      ({"password": "not-the-passphrase"}, ccxt.AuthenticationError, None)],
                         (ccxt.InvalidNonce, None))  # the request's timestamp is stale


def test_funding_bills(sim, data):
    async def rate_history(ex, t16, rate):
        hist = await ex.fetch_funding_rate_history(SYM, None, 3)
        assert hist[-1]["timestamp"] == int(t16.timestamp() * 1000) and hist[-1]["fundingRate"] == rate

    assert_one_funding_payment(drive, sim, data, START, isolated_long, more=rate_history)


def test_timeout_after_accept_on_order_placement(sim):
    sim.faults.timeout_after_accept(delay=1.5, endpoint="POST /api/v5/trade/batch-orders")

    async def body(ex):
        await ex.set_leverage(5, SYM, {"marginMode": "isolated"})
        with pytest.raises(ccxt.RequestTimeout):
            await ex.create_order(SYM, "market", "buy", 2, None, {"marginMode": "isolated", "clientOrderId": "lost1"})
        ex.timeout = 10_000
        got = await ex.fetch_order(None, SYM, {"clientOrderId": "lost1"})  # accepted all the same
        assert (got["status"], got["filled"]) == ("closed", 2.0)
    drive(sim, body, timeout=500)
    assert ("timeout", "POST /api/v5/trade/batch-orders") in sim.faults.fired
