"""Shared pieces of the signal-bot, pairs and collector tests: a three-symbol Bitget simulator
replaying real 1m candles of SOL, BTC and ETH (``../shared/data``), the CoinGlass /
alternative.me / feed fakes, settings pointing at all of them, and a real async ccxt client."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from datetime import UTC, datetime

import pandas as pd

from conftest import USDM, _need
from fake_intel import API_KEY, FakeCoinGlass, FakeFearGreed, FakeFeeds, Item
from perpbot.config import load_settings
from perpbot.data import load_candles, load_funding
from perpbot.devtools.bitget_sim import BitgetSim

#: 1m rows replayed per symbol and the first candle not yet closed (11.8 days of history: 70 4h bars).
ROWS, START = 18_000, 17_000
COINS = ("SOL", "BTC", "ETH")
TAKER = {"SOL": {"4h": {}, "1h": {"symbol": "SOL", "buy_ratio": 55.0, "sell_ratio": 45.0, "buy_vol_usd": 5.5e8,
                                  "sell_vol_usd": 4.5e8}},
         "BTC": {"4h": {"symbol": "BTC", "buy_ratio": 48.0, "sell_ratio": 52.0, "buy_vol_usd": 4.8e9,
                        "sell_vol_usd": 5.2e9}},
         "ETH": {"4h": {"symbol": "ETH", "buy_ratio": 51.0, "sell_ratio": 49.0, "buy_vol_usd": 2.04e9,
                        "sell_vol_usd": 1.96e9}}}


@functools.cache
def world_data(rows: int = ROWS, eth_from: int = 0) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """{"SOLUSDT": (1m candles, funding), ...}: the first ``rows`` real 1m candles of each coin
    (ETH from row ``eth_from``: a later "listing")."""
    out = {}
    for coin in COINS:
        c = load_candles(_need(USDM / f"{coin}USDT-1m.parquet"))
        start = eth_from if coin == "ETH" else 0
        out[f"{coin}USDT"] = (c.iloc[start:rows].reset_index(drop=True),
                              load_funding(_need(USDM / f"{coin}USDT-funding.parquet")))
    return out


@contextmanager
def three_symbol_sim(start_bar: int = START, data=None):
    """A started BitgetSim trading SOL and serving BTC and ETH public data on the same clock."""
    data = data or world_data()
    sol = data["SOLUSDT"]
    sim = BitgetSim(candles=sol[0], funding=sol[1], start_bar=start_bar,
                    others={k: v for k, v in data.items() if k != "SOLUSDT"})
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def news_items(now: datetime) -> list[Item]:
    hour = pd.Timedelta(hours=1)
    return [Item("Solana rallies as developers celebrate a great upgrade", "http://n.test/1", (now - 2 * hour)),
            Item("Bitcoin slumps, traders fear a terrible crash", "http://n.test/2", (now - 3 * hour)),
            Item("Ethereum steady", "http://n.test/3", (now - 1 * hour))]


@contextmanager
def fakes():
    """(FakeCoinGlass, FakeFearGreed, FakeFeeds) started, with taker data for the three coins."""
    with FakeCoinGlass() as cg, FakeFearGreed() as fg, FakeFeeds() as feeds:
        cg.taker = {k: dict(v) for k, v in TAKER.items()}
        feeds.rss["news"] = news_items(datetime.now(UTC))
        yield cg, fg, feeds


def world_settings(tmp_path, cg, fg, feeds, **over):
    """Settings of the signal bot / collector against the fakes (the venue is injected by the test)."""
    opts = dict(output_dir=tmp_path, signal_exchange="bitget", intel_coinglass_base_url=cg.base_url,
                coinglass_api_key=API_KEY, intel_fear_greed_base_url=fg.base_url,
                sentiment_feeds=[feeds.base_url + "/rss/news"], sentiment_subreddits=[], intel_retries=0,
                intel_timeout=3.0, intel_deadline=5.0, intel_cooldown=0.0, micro_retention_minutes=360,
                micro_save_interval=0.0, signal_cooldown=30.0, funding=False)
    opts.update(over)
    return load_settings(None, **opts)


def sim_exchange(sim):
    """A real asyncio ccxt bitget client pointed at the simulator."""
    import ccxt.async_support as ccxt_async

    ex = ccxt_async.bitget({"options": {"defaultType": "swap", "uta": False, "fetchMarkets": {"types": ["swap"]}}})
    sim.point(ex)
    ex.rateLimit = 1
    return ex
