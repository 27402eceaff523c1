"""CoinGlass and Fear & Greed clients against local fake servers speaking the documented
protocols: shapes, caching, long/short range fallback, interval normalisation, per-symbol
cooldown, keyless / refused / failing sources, and a market snapshot that degrades to a
partial answer instead of failing or waiting."""

from __future__ import annotations

import asyncio
import math
import socket
from datetime import UTC, datetime

import pytest

from fake_intel import API_KEY, FakeCoinGlass, FakeFearGreed
from perpbot.intel import MarketContext
from perpbot.intel.coinglass import CoinGlassClient, normalise_interval
from perpbot.intel.feargreed import FearGreedClient
from perpbot.intel.source import (
    SourceCooldown, SourceDown, SourceKeyless, SourceNoData, SourceRejected, SourceUnauthorized,
)

FUNDING = "/api/futures/funding-rate/exchange-list"
OI = "/api/futures/open-interest/exchange-list"
TAKER = "/api/futures/taker-buy-sell-volume/exchange-list"
LIQ = "/api/futures/liquidation/aggregated-history"
OI_HIST = "/api/futures/open-interest/aggregated-history"


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def cg_client(fake, clock=None, **kw) -> CoinGlassClient:
    opts = {"base_url": fake.base_url, "ttl": 60.0, "cooldown": 0.0, "retries": 2, "timeout": 2.0, "backoff": 0.0,
            "clock": clock or Clock()} | kw
    return CoinGlassClient(kw.pop("api_key", API_KEY), **{k: v for k, v in opts.items() if k != "api_key"})


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- CoinGlass --
def test_coinglass_documented_shapes_parsed_and_cached():
    clock = Clock()
    with FakeCoinGlass() as fake:
        async def main():
            c = cg_client(fake, clock)
            try:
                fr = await c.funding_rates("SOL/USDT:USDT")
                btc = await c.funding_rates("btcusdt")        # the same answer lists every coin: cached
                oi1 = await c.open_interest("SOL")
                oi2 = await c.open_interest("SOL")             # within the 60 s TTL: no request
                clock.advance(61)
                oi3 = await c.open_interest("SOL")             # expired: asked again
                return fr, btc, oi1, oi2, oi3
            finally:
                await c.aclose()
        fr, btc, oi1, oi2, oi3 = run(main())
        assert fake.count(FUNDING) == 1 and fake.count(OI) == 2
        assert fake.calls(OI)[0].params == {"symbol": "SOL"}
        assert fake.calls(OI)[0].headers["cg-api-key"] == API_KEY
    assert fr.coin == "SOL" and [v.exchange for v in fr.venues] == ["Binance", "Bybit", "Hyperliquid"]
    assert fr.mean_rate_pct == pytest.approx((0.01 - 0.004 + 0.0013) / 3)
    assert fr.for_exchange("bybit").rate_pct == -0.004 and fr.for_exchange("Hyperliquid").interval_hours == 1
    assert fr.venues[0].next_funding_time == datetime(2025, 4, 21, 8, 0, tzinfo=UTC)   # 1745222400000 ms
    assert [v.margin for v in btc.venues] == ["stablecoin", "stablecoin", "coin"]
    assert oi1.oi_usd == 4_500_000_000.5 and oi1.oi_quantity == 30_000_000.25
    assert oi1.change_24h_pct == -3.5 and oi1.change_pct["4h"] == 2.95
    assert oi1.by_exchange == (("Binance", 1_500_000_000.0, -1.25),)
    assert oi2 == oi1 and oi3.as_of > oi1.as_of          # as_of: when the answer was received


def test_long_short_ratio_falls_back_across_ranges():
    with FakeCoinGlass() as fake:
        empty = {"symbol": "SOL", "buy_ratio": 0, "sell_ratio": 0, "buy_vol_usd": 0, "sell_vol_usd": 0,
                 "exchange_list": []}
        fake.taker["SOL"] = {"4h": {}, "1h": empty,
                             "12h": {"symbol": "SOL", "buy_ratio": 51.01, "sell_ratio": 48.99,
                                     "buy_vol_usd": 1112108532.1688, "sell_vol_usd": 1068220541.0417,
                                     "exchange_list": [{"exchange": "Binance", "buy_ratio": 49.22,
                                                        "sell_ratio": 50.78, "buy_vol_usd": 240077939.5811,
                                                        "sell_vol_usd": 247674925.1653}]}}

        async def main():
            c = cg_client(fake)
            try:
                first = await c.long_short_ratio("SOL")
                again = await c.long_short_ratio("SOL")        # every range answer is cached
                with pytest.raises(SourceNoData, match="no taker buy/sell data for ETH over 4h, 1h, 12h, 24h"):
                    await c.long_short_ratio("ETH")
                return first, again
            finally:
                await c.aclose()
        lsr, again = run(main())
        sol_ranges = [r.params["range"] for r in fake.calls(TAKER) if r.params["symbol"] == "SOL"]
    assert sol_ranges == ["4h", "1h", "12h"]          # no data in 4h (empty), nor in 1h (zero volume)
    assert lsr.range == "12h" and lsr.tried == ("4h", "1h", "12h")
    assert lsr.buy_ratio_pct == 51.01 and lsr.sell_ratio_pct == 48.99
    assert lsr.ratio == pytest.approx(1112108532.1688 / 1068220541.0417)
    assert again == lsr


def test_history_intervals_normalised_up_and_cached_for_their_interval():
    assert normalise_interval("1m", "hobbyist") == "4h"
    assert normalise_interval("45m", "startup") == "1h"      # 45m is not offered: next one up
    assert normalise_interval("2h", "standard") == "4h"
    assert normalise_interval("5m", "professional") == "5m"
    assert normalise_interval("2w") == "1w"
    with pytest.raises(ValueError, match="not like"):
        normalise_interval("soon")
    with pytest.raises(ValueError, match="unknown CoinGlass plan"):
        normalise_interval("1h", "gold")
    clock = Clock()
    with FakeCoinGlass(plan_min="4h") as fake:
        async def main():
            c = cg_client(fake, clock)
            try:
                liq = await c.liquidations("SOL", interval="1h", limit=3)    # the fake refuses < 4h (code 400)
                clock.advance(3 * 3600)
                await c.liquidations("SOL", interval="1h", limit=3)          # 4 h bars: cached for 4 h
                n_cached = fake.count(LIQ)
                clock.advance(3600 + 1)
                await c.liquidations("SOL", interval="1h", limit=3)
                oi_bars = await c.open_interest_history("SOL", interval="15m", limit=2)
                return liq, n_cached, oi_bars
            finally:
                await c.aclose()
        liq, n_cached, oi_bars = run(main())
        assert n_cached == 1 and fake.count(LIQ) == 2
        q = fake.calls(LIQ)[0].params
        assert q == {"exchange_list": "Binance,OKX,Bybit", "symbol": "SOL", "interval": "4h", "limit": "3"}
        assert fake.calls(OI_HIST)[0].params["interval"] == "4h"
    assert liq.interval == "4h" and liq.requested_interval == "1h"
    assert [b.long_usd for b in liq.bars] == [1000.0, 2000.0, 3000.0]
    assert liq.total() == (6000.0, 3000.0) and liq.total(last=1) == (3000.0, 1500.0)
    assert (liq.bars[1].time - liq.bars[0].time).total_seconds() == 4 * 3600
    assert [(b.open, b.close) for b in oi_bars] == [(100.0, 105.0), (101.0, 106.0)]
    with FakeCoinGlass(plan_min="30m") as fake:
        async def startup():
            c = cg_client(fake, plan="startup")
            try:
                return await c.liquidations("SOL", interval="15m", limit=2)
            finally:
                await c.aclose()
        assert run(startup()).interval == "30m"


def test_per_symbol_cooldown_spaces_requests_and_failures():
    clock = Clock()
    with FakeCoinGlass() as fake:
        async def main():
            c = cg_client(fake, clock, ttl=0.0, cooldown=30.0, retries=0)   # no cache: only the cooldown
            try:
                a = await c.open_interest("SOL")
                clock.advance(5)
                b = await c.open_interest("SOL")          # within 30 s: last answer, no request
                await c.open_interest("ETH")              # another symbol is not cooling down
                n_before = fake.count(OI)
                clock.advance(26)
                d = await c.open_interest("SOL")          # 31 s later: asked again
                fake.fail(OI, 500)
                clock.advance(31)
                with pytest.raises(SourceDown, match="HTTP 500"):
                    await c.open_interest("BTC")
                n_fail = fake.count(OI)
                with pytest.raises(SourceCooldown, match="try again in 30 s"):
                    await c.open_interest("BTC")          # failed just now: the source is not asked again
                n_cool = fake.count(OI)
                clock.advance(30)
                e = await c.open_interest("BTC")
                return a, b, d, e, n_before, n_fail, n_cool
            finally:
                await c.aclose()
        a, b, d, e, n_before, n_fail, n_cool = run(main())
        assert b == a and d.as_of > a.as_of and e.coin == "BTC"
        assert n_before == 2 and n_fail == 4 and n_cool == 4 and fake.count(OI) == 5


def test_keyless_refused_and_failing_coinglass():
    with FakeCoinGlass() as fake:
        async def main():
            keyless = cg_client(fake, api_key=None)
            wrong = cg_client(fake, api_key="not-the-key")
            c = cg_client(fake)
            try:
                for call in (keyless.funding_rates("SOL"), keyless.open_interest("SOL"),
                             keyless.long_short_ratio("SOL"), keyless.liquidations("SOL")):
                    with pytest.raises(SourceKeyless, match="PERPBOT_COINGLASS_API_KEY"):
                        await call
                assert fake.count() == 0                  # keyless: nothing is sent
                with pytest.raises(SourceUnauthorized, match="HTTP 401") as exc:
                    await wrong.open_interest("SOL")
                assert "not-the-key" not in str(exc.value)
                assert fake.count(OI) == 1                # 401 is final, not retried
                fake.error_code[FUNDING] = "500"
                with pytest.raises(SourceDown, match="code 500.*after 3 attempts"):
                    await c.funding_rates("SOL")
                assert fake.count(FUNDING) == 3           # 1 + 2 retries
                fake.error_code[FUNDING] = "400"
                with pytest.raises(SourceRejected, match="code 400"):
                    await c.funding_rates("SOL")
                assert fake.count(FUNDING) == 4
                fake.error_code[OI] = "401"               # the envelope's own auth error on HTTP 200
                with pytest.raises(SourceUnauthorized, match="code 401"):
                    await c.open_interest("SOL")
            finally:
                for x in (keyless, wrong, c):
                    await x.aclose()
        run(main())


# ---------------------------------------------------------------------------- Fear & Greed --
def test_fear_greed_current_history_and_cache_until_update():
    clock = Clock()
    with FakeFearGreed() as fake:
        async def main():
            c = FearGreedClient(base_url=fake.base_url, clock=clock, backoff=0.0)
            try:
                now = await c.current()
                again = await c.current()
                clock.advance(68_000)
                await c.current()                         # still before time_until_update (68499 s)
                n_cached = fake.count("/fng/")
                clock.advance(600)
                await c.current()
                hist = await c.history(3)
                everything = await c.history(0)
                return now, again, n_cached, hist, everything
            finally:
                await c.aclose()
        now, again, n_cached, hist, everything = run(main())
        assert fake.calls("/fng/")[0].params == {"limit": "1", "format": "json"}
        assert n_cached == 1 and fake.count("/fng/") == 4
    assert (now.value, now.classification, now.time_until_update_s) == (40, "Fear", 68499)
    assert now.time == datetime(2019, 2, 26, 5, 0, tzinfo=UTC)     # 1551157200 s
    assert again is now
    assert [f.value for f in hist] == [31, 47, 40]                   # oldest first
    assert len(everything) == 3


# ------------------------------------------------------------------------------- snapshot --
def test_snapshot_shows_what_answered_and_names_what_is_missing():
    with FakeCoinGlass() as cg, FakeFearGreed() as fng:
        fng.delay("/fng/", 30.0)                           # hangs far longer than any timeout
        fake_cg_data = {"symbol": "SOL", "buy_ratio": 60.0, "sell_ratio": 40.0, "buy_vol_usd": 6.0,
                        "sell_vol_usd": 4.0, "exchange_list": []}
        cg.taker["SOL"] = {"4h": fake_cg_data}

        async def main():
            good = MarketContext(coinglass=cg_client(cg),
                                 fear_greed=FearGreedClient(base_url=fng.base_url, timeout=0.3, retries=0),
                                 timeout=1.0)
            keyless = MarketContext(coinglass=cg_client(cg, api_key=None),
                                    fear_greed=FearGreedClient(base_url=f"http://127.0.0.1:{closed_port()}",
                                                               timeout=0.5, retries=1, backoff=0.01),
                                    timeout=2.0)
            try:
                return await good.snapshot("SOL"), await keyless.snapshot("solusdt")
            finally:
                await good.aclose()
                await keyless.aclose()
        snap, bare = run(main())
    assert snap.symbol == "SOL/USDT:USDT" and snap.coin == "SOL"
    assert snap.funding.coin == "SOL" and snap.open_interest.change_24h_pct == -3.5
    assert snap.long_short.range == "4h" and snap.long_short.ratio == pytest.approx(1.5)
    assert math.isclose(snap.liquidations.total()[0], sum(1000.0 * (i + 1) for i in range(30)))
    assert snap.fear_greed is None
    fg = snap.statuses["fear_greed"]
    assert fg.state == "down" and "within 0.3 s (after 1 attempt)" in fg.detail
    assert set(snap.missing) == {"fear_greed"}
    assert snap.statuses["ticker"].state == "disabled" and "ticker" not in snap.missing
    assert snap.missing_line() == f"fear_greed ({fg.state})"
    # keyless CoinGlass and an unreachable Fear & Greed: every part named, nothing raised
    assert {p: s.state for p, s in bare.missing.items()} == {
        "funding": "keyless", "open_interest": "keyless", "long_short": "keyless", "liquidations": "keyless",
        "fear_greed": "down"}
    assert "cannot reach" in bare.statuses["fear_greed"].detail and "after 2 attempts" in bare.statuses[
        "fear_greed"].detail
    d = bare.to_dict()
    assert d["parts"] == {} and d["statuses"]["funding"]["state"] == "keyless"
