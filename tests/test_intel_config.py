"""Market-intelligence settings: the CoinGlass key only from the environment and never shown,
and MarketContext.from_settings wiring every client to (fake) sources."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import pytest

from fake_intel import API_KEY, FakeCoinGlass, FakeFearGreed, FakeFeeds, Item
from perpbot.config import ConfigError, load_settings
from perpbot.intel import MarketContext


def test_coinglass_key_comes_only_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERPBOT_COINGLASS_API_KEY", API_KEY)
    s = load_settings()
    assert s.coinglass_api_key.get_secret_value() == API_KEY
    assert "coinglass_api_key" not in s.public_dict() and API_KEY not in json.dumps(s.public_dict())
    cfg = tmp_path / "perpbot.toml"
    cfg.write_text('coinglass_api_key = "abc"\n')
    with pytest.raises(ConfigError, match="PERPBOT_COINGLASS_API_KEY"):
        load_settings(cfg)
    cfg.write_text('intel_long_short_ranges = ["2h"]\n')
    with pytest.raises(ConfigError, match="intel_long_short_ranges"):
        load_settings(cfg)
    cfg.write_text('sentiment_keywords = {SOL = ["solana"], PEPE = ["pepe", "$pepe"]}\nmicro_buckets = 30\n')
    s = load_settings(cfg)
    assert s.sentiment_keywords == {"SOL": ["solana"], "PEPE": ["pepe", "$pepe"]} and s.micro_buckets == 30


def test_from_settings_builds_every_client_and_never_shows_the_key(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PERPBOT_COINGLASS_API_KEY", API_KEY)
    rows = [[1_746_000_000_000 + i * 60_000, 100 + i % 3, 101 + i % 3, 99 + i % 3, 100 + i % 3, 10 + i % 4]
            for i in range(60)]
    now_ms = rows[-1][0] + 60_000

    async def fetch_1m(symbol, since, limit):
        return [r for r in rows if r[0] >= since][:limit]

    with FakeCoinGlass() as cg, FakeFearGreed() as fng, FakeFeeds() as feeds:
        feeds.rss["news"] = [Item("Solana surges", "http://n.test/1", datetime.now(UTC))]
        cg.taker["SOL"] = {"4h": {"buy_ratio": 55, "sell_ratio": 45, "buy_vol_usd": 55.0, "sell_vol_usd": 45.0}}
        s = load_settings(intel_coinglass_base_url=cg.base_url, intel_fear_greed_base_url=fng.base_url,
                          sentiment_feeds=[f"{feeds.base_url}/rss/news"], sentiment_subreddits=["solana"],
                          sentiment_reddit_base_url=feeds.base_url, output_dir=tmp_path, intel_retries=0)

        async def main():
            ctx = MarketContext.from_settings(s, fetch_1m=fetch_1m)
            ctx.micro.now_ms = lambda: now_ms
            try:
                with caplog.at_level(logging.DEBUG):
                    return await ctx.snapshot("SOL/USDT:USDT")
            finally:
                await ctx.aclose()
        snap = asyncio.run(asyncio.wait_for(main(), 30))
        assert cg.calls("/api/futures/open-interest/exchange-list")[0].headers["cg-api-key"] == API_KEY
    assert {p: st.state for p, st in snap.statuses.items() if not st.ok} == {
        "ticker": "disabled", "venue_funding": "disabled", "venue_open_interest": "disabled",
        "order_book": "disabled"}
    assert snap.long_short.ratio == pytest.approx(55 / 45) and snap.fear_greed.value == 40
    assert snap.micro.minutes == 60 and snap.sentiment.n_posts == 1
    assert (tmp_path / "intel" / "micro_1m.parquet").exists()     # saved on close
    text = json.dumps(snap.to_dict()) + caplog.text
    assert API_KEY not in text
