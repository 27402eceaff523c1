"""The live candle feed against the local Bitget simulator (real ccxt.pro client), and order-book features.

The simulator's replay clock is the feed's exchange clock (``clock=lambda: sim.market.now_ms``):
``sim.advance()`` closes the next real SOLUSDT 5m candle and pushes it over the websocket.
Every delivered candle is compared with the source frame: in order, none missing, none twice.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time

import pytest

from perpbot.exchange.feed import Candle, CandleFeed
from perpbot.exchange.orderbook import orderbook_features

SYMBOL = "SOL/USDT:USDT"
N, START_BAR = 1400, 1000


# ---------------------------------------------------------------------------- order-book features
BOOK = {"bids": [[99.96, 1.0], [100.00, 2.0], [99.80, 5.0]],  # unsorted on purpose
        "asks": [[100.02, 1.0], [100.05, 3.0], [100.30, 4.0]], "timestamp": 1_700_000_000_000}


def test_orderbook_features_worked_numbers():
    f = orderbook_features(BOOK, bps=(5, 10, 25))
    # mid = (100.00 + 100.02) / 2 = 100.01; spread 0.02 USDT = 0.02 / 100.01 * 1e4 bps
    assert f["mid"] == pytest.approx(100.01, abs=1e-12)
    assert f["spread"] == pytest.approx(0.02, abs=1e-12)
    assert f["spread_bps"] == pytest.approx(1.9998000199980002, rel=1e-9)
    # top of book: 2 bid vs 1 ask -> (2 - 1) / (2 + 1)
    assert f["imbalance"] == pytest.approx(1 / 3, rel=1e-12)
    # 5 bps band = [99.959995, 100.060005]: bids 100.00x2 + 99.96x1, asks 100.02x1 + 100.05x3
    assert f["depth_bid_5bps"] == pytest.approx(299.96, rel=1e-12)
    assert f["depth_ask_5bps"] == pytest.approx(400.17, rel=1e-12)
    assert f["depth_imbalance_5bps"] == pytest.approx((299.96 - 400.17) / (299.96 + 400.17), rel=1e-12)
    # 10 bps band = [99.90999, 100.11001]: same levels
    assert (f["depth_bid_10bps"], f["depth_ask_10bps"]) == pytest.approx((299.96, 400.17), rel=1e-12)
    # 25 bps band = [99.759975, 100.260025]: + bid 99.80x5 = 499; ask 100.30 still outside
    assert (f["depth_bid_25bps"], f["depth_ask_25bps"]) == pytest.approx((798.96, 400.17), rel=1e-12)
    assert f["timestamp"] == 1_700_000_000_000
    # contracts of 0.1 base coin scale every quantity and notional, not the prices
    g = orderbook_features(BOOK, bps=(25,), contract_size=0.1)
    assert g["bid_qty"] == pytest.approx(0.2) and g["depth_bid_25bps"] == pytest.approx(79.896, rel=1e-12)
    assert g["imbalance"] == pytest.approx(1 / 3) and g["spread_bps"] == f["spread_bps"]
    assert math.isnan(orderbook_features({"bids": BOOK["bids"], "asks": BOOK["asks"]})["timestamp"])


@pytest.mark.parametrize("book, msg", [
    ({"bids": [], "asks": [[1.0, 1.0]]}, "no bids"),
    ({"bids": [[1.0, 0.0]], "asks": [[1.1, 1.0]]}, "no bids"),  # zero-size levels do not count
    ({"asks": [[1.0, 1.0]]}, "no 'bids'"),
    ({"bids": [[1.0, 1.0]], "asks": [[0.9, 1.0]]}, "crossed"),
    ({"bids": [["x", 1.0]], "asks": [[1.1, 1.0]]}, "is not [price, amount]"),
    ({"bids": [[1.0, -1.0]], "asks": [[1.1, 1.0]]}, "amount >= 0"),
])
def test_orderbook_features_bad_books(book, msg):
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        orderbook_features(book)
    with pytest.raises(ValueError, match="bps bands must be > 0"):
        orderbook_features(BOOK, bps=(0,))


# ---------------------------------------------------------------------------- feed vs simulator
@pytest.fixture(scope="module")
def source(sol5m):
    return sol5m.iloc[:N].reset_index(drop=True)


@pytest.fixture
def sim(source):
    from perpbot.devtools.bitget_sim import BitgetSim

    s = BitgetSim(candles=source, start_bar=START_BAR)
    s.start()
    yield s
    s.stop()


def expected(source, lo: int, hi: int) -> list[Candle]:
    return [Candle(int(r.timestamp.value // 1_000_000), r.open, r.high, r.low, r.close, r.volume)
            for r in source.iloc[lo:hi].itertuples(index=False)]


def pro_client(sim):
    import ccxt.pro

    ex = ccxt.pro.bitget({"options": {"defaultType": "swap", "uta": False, "fetchMarkets": {"types": ["swap"]}}})
    sim.point(ex)
    ex.rateLimit = 1
    return ex


async def until(cond, timeout: float = 10.0, what: str = "condition") -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")  # pragma: no cover
        await asyncio.sleep(0.01)


def candle_subscribed(sim) -> bool:
    return any(a.get("channel", "").startswith("candle") for c in list(sim.hub.conns) for a in list(c.subs.values()))


async def advance(sim, n: int = 1) -> None:
    await asyncio.to_thread(sim.advance, n)


async def advance_pushed(sim, feed, got, n_after: int) -> None:
    """Close one candle and wait until it is delivered AND its websocket push was received
    (the replay clock jumps before the push, so REST may deliver it first)."""
    before = feed.ws_updates
    await advance(sim)
    await until(lambda: len(got) == n_after and feed.ws_updates > before, what=f"candle {n_after} and its push")


def run_feed(sim, scenario, **kw):
    """Run ``scenario(feed, got)`` with a feed on the simulator; always stop feed, client and tasks."""
    async def main():
        ex = kw.pop("exchange", None) or pro_client(sim)
        got: list[Candle] = []
        opts = {"clock": lambda: sim.market.now_ms, "reconnect_base": 0.05, "poll_interval": 0.05} | kw
        feed = CandleFeed(ex, SYMBOL, "5m", **opts)
        task = asyncio.ensure_future(feed.run(got.append))
        try:
            await asyncio.wait_for(feed.ready.wait(), 10)
            await scenario(feed, got)
        finally:
            feed.stop()
            await asyncio.wait_for(task, 10)
            await ex.close()
        return feed, got
    return asyncio.run(main())


def test_feed_delivers_closed_candles_in_order_with_book_and_ticker(sim, source):
    async def scenario(feed, got):
        assert feed.last_timestamp == expected(source, START_BAR - 1, START_BAR)[0].timestamp
        await until(lambda: candle_subscribed(sim) and feed.ticker is not None and feed.book_features, what="subs")
        await asyncio.sleep(0.2)
        assert got == []  # the candle in progress is not delivered
        for i in range(5):
            await advance_pushed(sim, feed, got, i + 1)
        bid, ask, _ = sim.market.book_top()
        await until(lambda: feed.book_features["best_bid"] == bid, what="book update")
        assert feed.book_features["best_ask"] == ask
        assert feed.book_features["spread_bps"] == pytest.approx((ask - bid) / ((ask + bid) / 2) * 1e4)
        await until(lambda: feed.ticker["last"] == source.close[START_BAR + 4], what="ticker update")

    feed, got = run_feed(sim, scenario, watch_book=True, watch_ticker=True)
    assert got == expected(source, START_BAR, START_BAR + 5)
    assert feed.mode == "ws" and feed.reconnects == 0 and feed.ws_updates == 6  # snapshot + 5 pushes
    assert feed.delivered_by["poll"] == 0 and sum(feed.delivered_by.values()) == 5


def test_feed_never_delivers_the_candle_in_progress(sim, source):
    """A live venue also serves the candle in progress (REST and websocket). With the clock
    2.5 min into it (test-side subclass of the real client), only closed candles come out."""
    import ccxt.pro

    def open_row():
        return [sim.market.now_ms, 150.0, 151.0, 149.0, 150.5, 12.0]

    class LiveBitget(ccxt.pro.bitget):
        async def fetch_ohlcv(self, *args, **kwargs):
            return (await super().fetch_ohlcv(*args, **kwargs)) + [open_row()]

        async def watch_ohlcv(self, *args, **kwargs):
            return (await super().watch_ohlcv(*args, **kwargs)) + [open_row()]

    ex = LiveBitget({"options": {"defaultType": "swap", "uta": False, "fetchMarkets": {"types": ["swap"]}}})
    sim.point(ex)
    ex.rateLimit = 1

    async def scenario(feed, got):
        await until(lambda: candle_subscribed(sim) and feed.ws_updates >= 1, what="subscription")
        for i in range(3):
            await advance_pushed(sim, feed, got, i + 1)
        await asyncio.sleep(0.3)  # several clock checks and websocket updates later: still 3

    feed, got = run_feed(sim, scenario, exchange=ex, clock=lambda: sim.market.now_ms + 150_000)
    assert got == expected(source, START_BAR, START_BAR + 3)


def test_feed_survives_a_dropped_websocket_and_backfills_by_rest(sim, source):
    async def scenario(feed, got):
        await until(lambda: candle_subscribed(sim), what="subscription")
        for i in range(2):
            await advance_pushed(sim, feed, got, i + 1)
        await asyncio.sleep(0.1)  # the feed is waiting on the websocket again
        old = set(sim.hub.conns)
        sim.faults.drop_websocket("public")
        rest_before = len([r for r in sim.requests if r["path"].endswith("history-candles")])
        await advance(sim, 3)  # produced while the feed is disconnected
        await until(lambda: len(got) == 5, what="candles of the outage")
        assert len([r for r in sim.requests if r["path"].endswith("history-candles")]) > rest_before  # by REST
        await until(lambda: any(c not in old for c in sim.hub.conns) and candle_subscribed(sim), what="resubscription")
        await advance_pushed(sim, feed, got, 6)  # the new connection delivers pushes

    feed, got = run_feed(sim, scenario)
    assert got == expected(source, START_BAR, START_BAR + 6)  # in order, none missing, none twice
    assert feed.mode == "ws" and feed.reconnects == 1 and feed.delivered_by["poll"] == 0


def test_feed_fills_a_long_outage_in_order_despite_a_failing_rest_call(sim, source):
    # 105 candles close while disconnected and the first REST call fails (503); the
    # resubscription snapshot holds only the last 100. Everything arrives once, in order.
    async def scenario(feed, got):
        await until(lambda: candle_subscribed(sim), what="subscription")
        await advance_pushed(sim, feed, got, 1)
        await asyncio.sleep(0.1)
        old = set(sim.hub.conns)
        sim.faults.server_error(endpoint="history-candles", count=1, status=503)
        sim.faults.drop_websocket("public")
        await advance(sim, 105)
        await until(lambda: len(got) == 106, what="106 candles")
        await until(lambda: any(c not in old for c in sim.hub.conns) and candle_subscribed(sim), what="resubscription")
        await advance_pushed(sim, feed, got, 107)

    feed, got = run_feed(sim, scenario)
    assert got == expected(source, START_BAR, START_BAR + 107)
    assert ("5xx", "/api/v2/mix/market/history-candles") in sim.faults.fired
    assert feed.reconnects == 1 and sum(feed.delivered_by.values()) == 107


def test_feed_falls_back_to_rest_polling_without_websocket(sim, source):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"ws://127.0.0.1:{s.getsockname()[1]}/v2/ws/public"
    s.close()  # nothing listens there
    ex = pro_client(sim)
    ex.urls["api"]["ws"]["public"] = dead

    async def scenario(feed, got):
        await until(lambda: feed.mode == "rest", what="REST polling")
        for i in range(3):
            await advance(sim)
            await until(lambda: len(got) == i + 1, what=f"polled candle {i + 1}")
        await until(lambda: feed.book_features.get("best_bid") == sim.market.book_top()[0], what="polled book")

    feed, got = run_feed(sim, scenario, exchange=ex, ws_failures_before_polling=2, watch_book=True)
    assert got == expected(source, START_BAR, START_BAR + 3)
    assert feed.reconnects == 2 and feed.delivered_by["poll"] == 3
    assert feed.watcher.updates["book"] >= 1


def test_feed_catches_up_from_a_known_candle_and_iterates(sim, source):
    # the consumer already has candles up to bar 549: the feed first delivers 550..999 by REST
    # (3 pages of <= 200), then live candles; as an async iterator that ends after stop().
    async def main():
        ex = pro_client(sim)
        last = expected(source, 549, 550)[0].timestamp
        feed = CandleFeed(ex, SYMBOL, "5m", last_timestamp=last, clock=lambda: sim.market.now_ms,
                          reconnect_base=0.05, poll_interval=0.05)
        got = []
        try:
            async for candle in feed:  # ends after feed.stop()
                got.append(candle)
                if len(got) == 450:
                    await until(lambda: candle_subscribed(sim), what="subscription")
                    await advance(sim, 2)
                if len(got) == 452:
                    feed.stop()
        finally:
            await ex.close()
        return feed, got

    feed, got = asyncio.run(main())
    assert got == expected(source, 550, START_BAR + 2)
    assert feed.delivered_by["backfill"] >= 450 and sum(feed.delivered_by.values()) == 452


def test_feed_rejects_an_unlisted_symbol_and_bad_timeframe(sim):
    async def main():
        ex = pro_client(sim)
        try:
            feed = CandleFeed(ex, "DOGE/USDT:USDT", "5m", clock=lambda: sim.market.now_ms)
            with pytest.raises(ValueError, match="bitget: symbol 'DOGE/USDT:USDT' is not listed"):
                await asyncio.wait_for(feed.run(lambda c: None), 10)
        finally:
            await ex.close()
    asyncio.run(main())
    with pytest.raises(ValueError, match="unknown timeframe '7m'"):
        CandleFeed(object(), SYMBOL, "7m")


def test_make_async_exchange_points_rest_only():
    from perpbot.exchange.feed import make_async_exchange

    async def main():
        ex = make_async_exchange("bitget", api_url="http://127.0.0.1:9")
        try:
            assert ex.urls["api"]["mix"] == "http://127.0.0.1:9" and ex.urls["api"]["spot"] == "http://127.0.0.1:9"
            assert ex.urls["api"]["ws"]["public"] == "wss://ws.bitget.com/v2/ws/public"  # websockets untouched
            assert ex.options["defaultType"] == "swap" and ex.options["uta"] is False and ex.enableRateLimit
            assert ex.has["watchOHLCV"]
        finally:
            await ex.close()
    asyncio.run(main())
    with pytest.raises(ValueError, match="unknown exchange 'nope'"):
        make_async_exchange("nope")
