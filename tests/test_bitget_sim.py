"""The local Bitget simulator, driven by the real, unpatched ccxt 4.5 clients over 127.0.0.1.

Real SOLUSDT 5m candles, funding and 8h mark prices are replayed. Checks: market rules and data
(candles equal the file / an independent pandas resample, funding history, ticker, book, tiers),
auth (the documented pre-hash, wrong key / passphrase / signature refused), orders and TP/SL
with the paper exchange's exact money math (fill prices, fees, funding, PnL equal to
SimulatedExchange on the same candles), the injectable faults as ccxt sees them, and the
websockets (ccxt.pro) after advance().
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import time
import urllib.error
import urllib.request

import ccxt
import ccxt.pro as ccxtpro
import numpy as np
import pandas as pd
import pytest

from perpbot.sim.config import AccountConfig
from perpbot.devtools.bitget_sim import BitgetSim
from perpbot.exchange.simulated import SimulatedExchange
from _sim_fixtures import running_sim, sim_module_fixtures

SYM = "SOL/USDT:USDT"
N_ROWS = 3000
START = 2000
OPTIONS = {"defaultType": "swap", "uta": False, "fetchMarkets": {"types": ["swap"]}}


# ccxt logs every request at DEBUG; formatting those for pytest's log capture is slow
_quiet_ccxt, data, sim = sim_module_fixtures(BitgetSim, N_ROWS, START, ("ccxt", "urllib3", "aiohttp", "asyncio"))


def client(sim, cls=ccxt.bitget, demo=True):
    # enableRateLimit off: ccxt's client-side throttle only slows a local test down
    ex = cls({"apiKey": sim.api_key, "secret": sim.api_secret, "password": sim.passphrase, "options": dict(OPTIONS),
              "enableRateLimit": False})
    if demo:
        ex.set_sandbox_mode(True)  # Bitget demo trading: the paptrading header
    sim.point(ex)
    return ex


@pytest.fixture
def ex(sim):
    e = client(sim)
    e.load_markets()
    return e


def ms(ts) -> int:
    return int(pd.Timestamp(ts).value // 1_000_000)


# ---- public market data ------------------------------------------------------------------------
def test_markets_have_bitget_rules(ex, sim):
    m = ex.market(SYM)
    assert (m["id"], m["type"], m["linear"], m["settle"]) == ("SOLUSDT", "swap", True, "USDT")
    assert m["precision"] == {"amount": 0.1, "price": 0.001}
    assert m["limits"]["amount"]["min"] == 0.1 and m["limits"]["cost"]["min"] == 5.0
    assert m["limits"]["leverage"]["max"] == 100.0
    assert (m["taker"], m["maker"]) == (0.0006, 0.0002)
    assert {"BTC/USDT:USDT", "ETH/USDT:USDT"} <= set(ex.markets)
    tiers = ex.fetch_market_leverage_tiers(SYM)
    assert [(t["maxNotional"], t["maintenanceMarginRate"], t["maxLeverage"]) for t in tiers[:3]] == [
        (50_000.0, 0.005, 100.0), (100_000.0, 0.008, 75.0), (1_000_000.0, 0.01, 50.0)]
    # set_sandbox_mode sends paptrading: 1 (ccxt leaves it off for the S*-FUTURES demo product types)
    usdt = [r for r in sim.requests if "productType=S" not in r["query"]]
    assert usdt and all(r["demo"] for r in usdt)


def test_fetch_ohlcv_pagination_returns_exactly_the_closed_candles(ex, data):
    candles = data[0]
    since, got = ms(candles.timestamp.iloc[0]), []
    while True:
        page = ex.fetch_ohlcv(SYM, "5m", since=since, limit=200)
        if not page:
            break
        assert len(page) <= 200
        got += page
        since = page[-1][0] + 1
    expect = candles.iloc[:START]
    assert len(got) == START  # nothing after the replay clock
    np.testing.assert_array_equal([r[0] for r in got], [ms(t) for t in expect.timestamp])
    np.testing.assert_array_equal(np.array([r[1:] for r in got]),
                                  expect[["open", "high", "low", "close", "volume"]].to_numpy())
    # 1h candles: an independent pandas resample of the same closed 5m candles
    hourly = ex.fetch_ohlcv(SYM, "1h", limit=5)
    ref = expect.set_index("timestamp").resample("1h").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    counts = expect.set_index("timestamp").resample("1h").size()
    ref = ref[counts == 12].tail(5)
    assert [r[0] for r in hourly] == [ms(t) for t in ref.index]
    np.testing.assert_allclose(np.array([r[1:] for r in hourly]), ref.to_numpy(), rtol=1e-12)
    mark = ex.fetch_ohlcv(SYM, "5m", limit=3, params={"price": "mark"})
    assert [r[1:5] for r in mark] == [r[1:5] for r in got[-3:]]  # mark = trade candles (documented)


def test_funding_ticker_book_and_open_interest(ex, sim, data):
    candles, funding, _ = data
    now = ms(candles.timestamp.iloc[START - 1]) + 300_000
    hist = ex.fetch_funding_rate_history(SYM, limit=20)
    settled = funding[funding.timestamp.map(ms) <= now].tail(20)
    assert [h["timestamp"] for h in hist] == [ms(t) for t in settled.timestamp]
    np.testing.assert_allclose([h["fundingRate"] for h in hist], settled.funding_rate.to_numpy(), rtol=1e-9)
    fr = ex.fetch_funding_rate(SYM)
    assert fr["fundingRate"] == pytest.approx(settled.funding_rate.iloc[-1], rel=1e-9)
    assert fr["fundingTimestamp"] == (now // 28_800_000 + 1) * 28_800_000 and fr["interval"] == "8h"
    last = float(candles.close.iloc[START - 1])
    t = ex.fetch_ticker(SYM)
    assert t["last"] == last and t["markPrice"] == last and t["timestamp"] == now
    day = candles.iloc[START - 288:START]
    assert t["high"] == day.high.max() and t["low"] == day.low.min()
    assert t["baseVolume"] == pytest.approx(day.volume.sum(), rel=1e-12)
    book = ex.fetch_order_book(SYM, 5)
    bid = math.floor(last / 0.001 + 1e-9) * 0.001
    assert book["bids"][0][0] == pytest.approx(bid) and book["asks"][0][0] == pytest.approx(bid + 0.001)
    assert len(book["bids"]) == len(book["asks"]) == 5
    unit = math.floor(candles.volume.iloc[START - 12:START].mean() / 100 / 0.1) * 0.1
    assert [b[1] for b in book["bids"]] == pytest.approx([unit * k for k in range(1, 6)])
    oi = ex.fetch_open_interest(SYM)
    assert oi["openInterestAmount"] == pytest.approx(day.volume.sum() / 10, abs=1e-4)
    sim.advance(2)
    assert ex.fetch_ticker(SYM)["last"] == float(candles.close.iloc[START + 1])
    assert ex.fetch_time() == now + 2 * 300_000


# ---- auth --------------------------------------------------------------------------------------
def _raw_get(sim, path, query, secret=None, key=None, passphrase=None):
    ts = str(int(time.time() * 1000))
    prehash = ts + "GET" + path + "?" + query
    sign = base64.b64encode(hmac.new((secret or sim.api_secret).encode(), prehash.encode(), hashlib.sha256).digest())
    req = urllib.request.Request(sim.base_url + path + "?" + query, headers={
        "ACCESS-KEY": key or sim.api_key, "ACCESS-SIGN": sign.decode(), "ACCESS-TIMESTAMP": ts,
        "ACCESS-PASSPHRASE": passphrase or sim.passphrase, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_signature_prehash_and_refusals(sim):
    path, query = "/api/v2/mix/account/accounts", "productType=USDT-FUTURES"
    status, body = _raw_get(sim, path, query)
    assert status == 200 and body["code"] == "00000" and body["data"][0]["accountEquity"] == "1000"
    assert _raw_get(sim, path, query, secret="wrong")[1]["code"] == "40009"
    assert _raw_get(sim, path, query, key="nope")[1]["code"] == "40006"
    status, body = _raw_get(sim, path, query, passphrase="nope")
    assert (status, body["code"]) == (400, "40012")
    bad = client(sim)
    bad.secret = "not-the-secret"
    with pytest.raises(ccxt.AuthenticationError, match="40009"):
        bad.fetch_balance()


# ---- orders, TP/SL and the paper exchange's money math --------------------------------------------
def _paper_trade(data, entry_bar, side, cfg):
    """The paper exchange's trade for a signal at the close of entry_bar - 1."""
    candles, funding, mark = data
    px = SimulatedExchange(cfg, "5m", funding=funding, mark=mark)
    for i in range(entry_bar - 1, len(candles)):
        r = candles.iloc[i]
        upd = px.on_candle(r.timestamp, r.open, r.high, r.low, r.close)
        if i == entry_bar - 1:
            px.set_signal(side)
        elif i >= entry_bar:
            px.set_signal(0)
        if len(upd.trades):
            return upd.trades.iloc[0]
    raise AssertionError("the paper trade never closed")


@pytest.mark.parametrize("entry_bar,side,reason", [(2106, 1, "take_profit"), (2205, -1, "stop_loss"),
                                                   (2298, 1, "stop_loss")])
def test_tpsl_round_trip_equals_paper_exchange(data, entry_bar, side, reason):
    cfg = AccountConfig(capital=1000.0, leverage=5.0, taker_fee=0.0006, slippage=0.0, stop_loss=0.006,
                    take_profit=0.009, max_daily_loss=1.0, max_drawdown=1.0)
    trade = _paper_trade(data, entry_bar, side, cfg)
    # entry bars chosen so that each trade carries a funding payment (00/08/16 UTC) and ends as named
    assert trade.funding != 0.0 and trade.exit_reason == reason
    candles = data[0]
    with running_sim(data, entry_bar) as s:
        e = client(s)
        e.load_markets()
        e.set_margin_mode("isolated", SYM)
        e.set_leverage(5, SYM)
        order = e.create_order(SYM, "market", "buy" if side > 0 else "sell", float(trade.qty), params={
            "marginMode": "isolated", "clientOrderId": "entry-1",
            "stopLoss": {"triggerPrice": float(trade.stop_loss)}, "takeProfit": {"triggerPrice": float(trade.take_profit)}})
        assert e.fetch_positions([SYM]) == []  # fills at the next candle's open
        s.advance()
        pos = e.fetch_positions([SYM])[0]
        assert pos["side"] == ("long" if side > 0 else "short") and pos["contracts"] == trade.qty
        assert pos["entryPrice"] == trade.entry_price == candles.open.iloc[entry_bar]
        q, p0 = trade.qty, trade.entry_price  # Bitget's isolated formula with margin = notional / 5, tier 1
        assert pos["liquidationPrice"] == pytest.approx((q * p0 / 5 - q * p0 * side) / (q * (0.005 + 0.0006 - side)),
                                                        rel=1e-10)
        plans = e.fetch_open_orders(SYM, params={"planType": "profit_loss"})
        assert sorted(p["triggerPrice"] for p in plans) == sorted([trade.stop_loss, trade.take_profit])
        bars = 1
        while e.fetch_positions([SYM]):
            s.advance()
            bars += 1
        assert entry_bar + bars - 1 == entry_bar + (trade.exit_bar - trade.entry_bar)
        fills = e.fetch_my_trades(SYM)
        entry, exit_ = sorted(fills, key=lambda f: f["timestamp"])
        assert entry["order"] == order["id"] and entry["price"] == trade.entry_price
        assert exit_["price"] == pytest.approx(trade.exit_price, rel=1e-12)
        assert entry["fee"]["cost"] + exit_["fee"]["cost"] == pytest.approx(trade.fees, rel=1e-12)
        assert float(exit_["info"]["profit"]) == pytest.approx(trade.gross_pnl, rel=1e-12)
        paid = -sum(b["amount"] for b in s.state["bills"])
        assert paid == pytest.approx(trade.funding, rel=1e-12)
        funding_hist = e.fetch_funding_history(SYM)
        assert sum(f["amount"] for f in funding_hist) == pytest.approx(-trade.funding, rel=1e-9)
        assert e.fetch_balance()["USDT"]["total"] == pytest.approx(1000.0 + trade.pnl, rel=1e-12)
        closing = e.fetch_order(exit_["order"], SYM)
        reason = {"stop_loss": "pos_loss_market", "take_profit": "pos_profit_market"}[trade.exit_reason]
        assert closing["info"]["orderSource"] == reason and closing["reduceOnly"] is True
        assert e.fetch_open_orders(SYM, params={"planType": "profit_loss"}) == []  # plans gone with the position


def test_duplicate_client_oid_margin_mode_and_rejections(ex, sim):
    ex.set_margin_mode("isolated", SYM)
    ex.set_leverage(5, SYM)
    p = {"marginMode": "isolated", "clientOrderId": "dup-1"}
    ex.create_order(SYM, "market", "buy", 0.5, params=p)
    with pytest.raises(ccxt.ExchangeError, match="40786"):
        ex.create_order(SYM, "market", "buy", 0.5, params=p)
    with pytest.raises(ccxt.ExchangeError, match="45117"):  # an order is open: margin mode locked
        ex.set_margin_mode("cross", SYM)
    with pytest.raises(ccxt.InsufficientFunds):  # 100 SOL x ~127 / 5x is far above 1000 USDT
        ex.create_order(SYM, "market", "buy", 100, params={"marginMode": "isolated"})
    with pytest.raises(ccxt.InvalidOrder, match="40917"):  # long stop above the price
        ex.create_order(SYM, "market", "buy", 0.5, params={"marginMode": "isolated", "stopLoss": {"triggerPrice": 500}})
    with pytest.raises(ccxt.BadRequest):  # ccxt's default cross margin is refused (isolated only)
        ex.create_order(SYM, "market", "buy", 0.5)
    sim.faults.reject_orders("45110", "less than the minimum amount 5 USDT")
    with pytest.raises(ccxt.InvalidOrder, match="45110"):
        ex.create_order(SYM, "market", "buy", 0.5, params={"marginMode": "isolated"})
    assert len([o for o in sim.state["orders"] if o["state"] == "live"]) == 1
    sim.advance()
    assert ex.fetch_order(None, SYM, params={"clientOrderId": "dup-1"})["status"] == "closed"


def test_limit_order_and_reduce_only_and_liquidation_price(ex, sim, data):
    candles = data[0]
    ex.set_leverage(20, SYM)
    low = float(candles.low.iloc[START:START + 50].min())
    price = round(low + 0.05, 2)
    o = ex.create_order(SYM, "limit", "buy", 2.0, price, params={"marginMode": "isolated"})
    assert ex.fetch_open_orders(SYM)[0]["id"] == o["id"]
    k = 0
    while ex.fetch_order(o["id"], SYM)["status"] == "open":
        sim.advance()
        k += 1
    assert ex.fetch_order(o["id"], SYM)["average"] == pytest.approx(price)
    assert candles.low.iloc[START + k - 1] <= price
    fill = ex.fetch_my_trades(SYM)[-1]
    assert fill["takerOrMaker"] == "maker" and fill["fee"]["cost"] == pytest.approx(2.0 * price * 0.0002)
    pos = ex.fetch_positions([SYM])[0]
    # independent check of Bitget's isolated formula L = (M - S*P*d) / (S*(MMR + taker - d))
    m = 2.0 * price / 20
    assert pos["liquidationPrice"] == pytest.approx((m - 2.0 * price) / (2.0 * (0.005 + 0.0006 - 1)), rel=1e-12)
    # a position stop through ccxt's stopLossPrice (place-tpsl-order, pos_loss), then cancelled
    sl = ex.create_order(SYM, "market", "sell", 2.0, params={"stopLossPrice": round(price * 0.97, 3)})
    plan = ex.fetch_open_orders(SYM, params={"planType": "profit_loss"})[0]
    assert plan["id"] == sl["id"] and plan["info"]["planType"] == "pos_loss"
    ex.cancel_order(sl["id"], SYM, params={"trigger": True})
    assert ex.fetch_open_orders(SYM, params={"planType": "profit_loss"}) == []
    far = ex.create_order(SYM, "limit", "buy", 1.0, round(price * 0.5, 3), params={"marginMode": "isolated"})
    ex.cancel_order(far["id"], SYM)
    assert ex.fetch_order(far["id"], SYM)["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(far["id"], SYM)
    ex.create_order(SYM, "market", "sell", 5.0, params={"marginMode": "isolated", "reduceOnly": True})
    sim.advance()
    assert ex.fetch_positions([SYM]) == []  # reduce-only closed 2.0 and opened nothing
    with pytest.raises(ccxt.ExchangeError, match="22002"):
        ex.create_order(SYM, "market", "sell", 1.0, params={"marginMode": "isolated", "reduceOnly": True})


# ---- faults ------------------------------------------------------------------------------------
def test_faults_timeout_429_5xx_partial(ex, sim):
    ex.timeout = 300  # ms
    sim.faults.timeout_after_accept(delay=1.0)
    with pytest.raises(ccxt.RequestTimeout):
        ex.create_order(SYM, "market", "buy", 1.0, params={"marginMode": "isolated", "clientOrderId": "t-1"})
    ex.timeout = 10_000
    assert ex.fetch_order(None, SYM, params={"clientOrderId": "t-1"})["status"] == "open"  # it exists server-side
    with pytest.raises(ccxt.ExchangeError, match="40786"):  # a retry with the same id cannot double it
        ex.create_order(SYM, "market", "buy", 1.0, params={"marginMode": "isolated", "clientOrderId": "t-1"})

    sim.faults.rate_limit(count=2)
    for _ in range(2):
        with pytest.raises(ccxt.DDoSProtection):
            ex.fetch_ticker(SYM)
    assert ex.fetch_ticker(SYM)["last"] > 0
    assert [r["status"] for r in sim.requests[-3:]] == [429, 429, 200]

    sim.faults.server_error("merge-depth", status=503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.fetch_order_book(SYM)
    assert ex.fetch_order_book(SYM)["bids"]

    sim.advance()  # t-1 fills
    sim.faults.partial_fill(0.4)
    p = ex.create_order(SYM, "market", "buy", 2.5, params={"marginMode": "isolated"})
    sim.advance()
    o = ex.fetch_order(p["id"], SYM)
    assert (o["status"], o["filled"], o["remaining"]) == ("open", 1.0, 1.5)
    assert ex.fetch_positions([SYM])[0]["contracts"] == 2.0
    sim.advance()
    assert ex.fetch_order(p["id"], SYM)["filled"] == 2.5
    assert ex.fetch_positions([SYM])[0]["contracts"] == 3.5


# ---- websockets ----------------------------------------------------------------------------------
def test_websockets_deliver_after_advance_and_reconnect(sim, data):
    candles = data[0]

    async def advance_while(*coros):
        tasks = [asyncio.ensure_future(c) for c in coros]
        await asyncio.sleep(0.1)  # subscriptions pending before the candle closes
        await asyncio.get_running_loop().run_in_executor(None, sim.advance)
        return await asyncio.wait_for(asyncio.gather(*tasks), 10)

    ex_rest = client(sim)
    ex_rest.load_markets()

    async def main():
        ex = client(sim, ccxtpro.bitget)
        try:
            await ex.load_markets()
            first = await ex.watch_ohlcv(SYM, "5m")
            assert first[-1][0] == ms(candles.timestamp.iloc[START - 1]) and len(first) == 100
            await ex.watch_ticker(SYM)
            await ex.watch_order_book(SYM)
            assert await ex.watch_positions([SYM]) == []  # snapshot: flat
            bars, ticker, book = await advance_while(ex.watch_ohlcv(SYM, "5m"), ex.watch_ticker(SYM),
                                                     ex.watch_order_book(SYM))
            row = candles.iloc[START]
            assert bars[-1] == [ms(row.timestamp), row.open, row.high, row.low, row.close, row.volume]
            assert ticker["last"] == row.close and book["bids"][0][0] == pytest.approx(row.close)
            await ex.create_order(SYM, "market", "buy", 1.0, params={"marginMode": "isolated"})
            orders, positions = await advance_while(ex.watch_orders(SYM), ex.watch_positions([SYM]))
            assert orders[-1]["status"] == "closed" and orders[-1]["filled"] == 1.0
            assert positions[-1]["side"] == "long" and positions[-1]["entryPrice"] == candles.open.iloc[START + 1]
            sim.faults.drop_websocket("all")
            with pytest.raises(ccxt.NetworkError):
                await asyncio.wait_for(ex.watch_ohlcv(SYM, "5m"), 5)
            sim.advance()  # a candle closes while the client is disconnected
            missed = ms(candles.timestamp.iloc[START + 2])
            assert ex_rest.fetch_ohlcv(SYM, "5m", limit=1)[0][0] == missed  # REST has it
            bars = await ex.watch_ohlcv(SYM, "5m")  # ccxt.pro reconnects: the new snapshot holds it too
            assert bars[-1][0] == missed
            (bars,) = await advance_while(ex.watch_ohlcv(SYM, "5m"))  # and live updates flow again
            assert bars[-1][0] == ms(candles.timestamp.iloc[START + 3])
        finally:
            await ex.close()

    asyncio.run(main())


def test_trailing_stop_and_liquidation_follow_the_candles(ex, sim, data):
    candles = data[0]
    o, h, lo = (candles[k].to_numpy() for k in ("open", "high", "low"))
    ex.set_leverage(5, SYM)
    ex.create_order(SYM, "market", "buy", 1.0, params={"marginMode": "isolated"})
    sim.advance()  # entry at the open of bar START
    entry = o[START]
    act, rate = round(entry * 1.002, 3), 0.005
    ex.privateMixPostV2MixOrderPlaceTpslOrder({  # trailing stop: ccxt's raw endpoint, one-way holdSide "buy"
        "symbol": "SOLUSDT", "productType": "USDT-FUTURES", "marginCoin": "USDT", "planType": "moving_plan",
        "triggerPrice": str(act), "rangeRate": "0.5", "holdSide": "buy", "size": "1", "triggerType": "mark_price"})
    # independent re-computation: active once high >= act, stop = best high x (1 - 0.5 %) set at each close,
    # hit on a later candle at the stop (or at the open when it gaps through)
    stop, k, expect = math.nan, START + 1, None
    while expect is None:
        if not math.isnan(stop) and lo[k] <= stop:
            expect = min(o[k], stop)
            break
        if not math.isnan(stop) or h[k] >= act:
            stop = h[k] * (1 - rate) if math.isnan(stop) else max(stop, h[k] * (1 - rate))
        k += 1
    while ex.fetch_positions([SYM]):
        sim.advance()
    assert sim.market.closed == k + 1  # closed in candle k
    last = ex.fetch_my_trades(SYM)[-1]
    assert last["price"] == pytest.approx(expect, rel=1e-12) and last["side"] == "sell"
    assert ex.fetch_order(last["order"], SYM)["info"]["orderSource"] == "moving_plan_market"

    # liquidation at 100x: the first later candle whose low reaches the liquidation price
    ex.set_leverage(100, SYM)
    before = sim.state["balance"]
    ex.create_order(SYM, "market", "buy", 1.0, params={"marginMode": "isolated"})
    sim.advance()
    i0 = sim.market.closed - 1
    p0 = o[i0]
    liq = (p0 / 100 - p0) / (0.005 + 0.0006 - 1)
    assert ex.fetch_positions([SYM])[0]["liquidationPrice"] == pytest.approx(liq, rel=1e-9)
    while sim.engine.position is not None:  # hundreds of candles: read the state directly
        sim.advance()
    assert ex.fetch_positions([SYM]) == []
    # independent walk: margin p0 / 100 less the funding paid (00/08/16 UTC bills), liquidation price by
    # Bitget's formula, liquidated in the first candle whose low reaches it (at the open on a gap)
    paid = {b["time"]: -b["amount"] for b in sim.state["bills"]}
    margin, j, expect = p0 / 100, i0, None
    while expect is None:
        t = ms(candles.timestamp.iloc[j])
        if j > i0 and t in paid:
            margin -= paid[t]
        liq = (margin - p0) / (0.005 + 0.0006 - 1)
        if lo[j] <= liq:
            expect = min(o[j], liq) if j > i0 else liq
            break
        j += 1
    assert sim.market.closed == j + 1
    fill = ex.fetch_my_trades(SYM)[-1]
    assert fill["price"] == pytest.approx(expect, rel=1e-9)
    assert ex.fetch_order(fill["order"], SYM)["info"]["orderSource"] == "liquidation"
    # the whole isolated margin is lost (the backtester's clearance rule), plus the entry fee and funding
    assert sim.state["balance"] == pytest.approx(before - p0 * 0.0006 - p0 / 100, abs=1e-9)
