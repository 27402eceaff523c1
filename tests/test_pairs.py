"""Pair selection: the ranking maths by hand, the simulator's market list ranked through a real
ccxt client (factors recomputed here from the raw 1m files), the filters, the point-in-time
history ranking, the weekly selector evaluation and the ``perpbot pairs`` command."""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pandas as pd
import pytest
import talib
from typer.testing import CliRunner

from _intel_world import fakes, sim_exchange, three_symbol_sim, world_data, world_settings
from perpbot.config import load_settings
from perpbot.data import load_candles, load_funding
from perpbot.intel.pairs import rank_table, rank_venue, select_pairs
from perpbot.backtest.pairs_history import evaluate_selector, history_factors, week_returns

W = {"volatility": 1.0, "volume": 1.0, "momentum": 0.5, "trend": 1.0, "funding": -0.5, "oi_change": 0.5, "spread": -1.0}


def test_rank_table_matches_a_hand_computation():
    v = pd.DataFrame({"volatility": [2.0, 1.0, 3.0], "volume": [5e8, 9e8, 1e8], "momentum": [4.0, 4.0, 1.0],
                      "trend": [30.0, 20.0, np.nan], "funding": [0.01, 0.03, 0.02], "oi_change": np.nan,
                      "spread": [1.0, 0.5, 2.0]}, index=["A", "B", "C"])
    t = rank_table(v, W)
    # by hand: ranks scaled to [0, 1]; ties share the average rank; missing -> 0.5
    norm = {"A": dict(volatility=0.5, volume=0.5, momentum=0.75, trend=1.0, funding=0.0, oi_change=0.5, spread=0.5),
            "B": dict(volatility=0.0, volume=1.0, momentum=0.75, trend=0.0, funding=1.0, oi_change=0.5, spread=0.0),
            "C": dict(volatility=1.0, volume=0.0, momentum=0.0, trend=0.5, funding=0.5, oi_change=0.5, spread=1.0)}
    score = {s: sum(W[f] * n[f] for f in W) / 5.5 for s, n in norm.items()}
    # A: .5 + .5 + .375 + 1 - 0 + .25 - .5; B: 0 + 1 + .375 + 0 - .5 + .25 - 0; C: 1 + 0 + 0 + .5 - .25 + .25 - 1
    assert score == pytest.approx({"A": 2.125 / 5.5, "B": 1.125 / 5.5, "C": 0.5 / 5.5})
    assert list(t.index) == ["A", "B", "C"] and list(t["rank"]) == [1, 2, 3]
    for s in "ABC":
        assert t.loc[s, "score"] == pytest.approx(score[s], abs=1e-12)
        assert {f: t.loc[s, f"n_{f}"] for f in W} == norm[s]
    with pytest.raises(ValueError, match="unknown factor"):
        rank_table(v, {"beta": 1.0})


def _hand_factors(coin: str, now_ms: int, data) -> dict:
    c1 = data[f"{coin}USDT"][0]
    fund = data[f"{coin}USDT"][1]
    now = pd.Timestamp(now_ms, unit="ms", tz="UTC")
    c1 = c1[c1["timestamp"] + pd.Timedelta(minutes=1) <= now]
    g = c1.set_index("timestamp").resample("1h", label="left", closed="left")
    h = pd.DataFrame({"high": g["high"].max(), "low": g["low"].min(), "close": g["close"].last(),
                      "n": g["close"].count()})
    h = h[h["n"] == 60].iloc[-170:]          # the 170 bars rank_venue asks for (lookback + 2)
    hi, lo, cl = (h[k].to_numpy() for k in ("high", "low", "close"))
    tr = np.maximum(hi[1:] - lo[1:], np.maximum(abs(hi[1:] - cl[:-1]), abs(lo[1:] - cl[:-1])))
    a = tr[:14].mean()
    for x in tr[14:]:
        a = (a * 13 + x) / 14
    day = c1[c1["timestamp"] >= now - pd.Timedelta(days=1)]
    last = float(c1["close"].iloc[-1])
    tick = {"SOL": 0.001, "BTC": 0.1, "ETH": 0.01}[coin]
    bid = math.floor(last / tick + 1e-9) * tick
    rate = fund[fund["timestamp"] <= now]["funding_rate"].iloc[-1]
    return {"volatility": a / cl[-1] * 100, "momentum": abs(cl[-1] / cl[-169] - 1) * 100,
            "trend": talib.ADX(hi, lo, cl, 14)[-1], "volume": float((day["volume"] * day["close"]).sum()),
            "spread": tick / (bid + tick / 2) * 1e4, "funding": abs(rate) * 100}


def test_pairs_ranks_the_simulators_market_list(tmp_path):
    data = world_data()
    with three_symbol_sim(data=data) as sim, fakes() as (cg, fg, feeds):
        s = world_settings(tmp_path, cg, fg, feeds, pairs_min_quote_volume=0, pairs_min_listing_days=5)

        async def main():
            ex = sim_exchange(sim)
            try:
                return await rank_venue(ex, s, now_ms=sim.market.now_ms), \
                    await select_pairs(ex, 2, s, now_ms=sim.market.now_ms)
            finally:
                await ex.close()
        ranking, top2 = asyncio.run(main())
    hand = pd.DataFrame({c: _hand_factors(c, sim.market.now_ms, data) for c in ("SOL", "BTC", "ETH")}).T
    hand.index = [f"{c}/USDT:USDT" for c in hand.index]
    t = ranking.table
    for f in ("volatility", "momentum", "trend", "volume", "spread", "funding"):
        assert t.loc[hand.index, f].to_numpy() == pytest.approx(hand[f].to_numpy(), rel=1e-9), f
    assert t["oi_change"].isna().all() and (t["n_oi_change"] == 0.5).all()
    expected = rank_table(hand.assign(oi_change=np.nan), s.pairs_weights)
    assert list(t.index) == list(expected.index) and top2 == list(expected.index[:2])
    assert not ranking.dropped and not ranking.errors


def test_pairs_filters_volume_and_listing_age(tmp_path):
    data = world_data(eth_from=12_000)          # ETH "listed" 3.5 days before the replay clock
    with three_symbol_sim(data=data) as sim, fakes() as (cg, fg, feeds):
        sol_volume = float(sim.market.ticker()["quoteVolume"])
        s = world_settings(tmp_path, cg, fg, feeds, pairs_min_quote_volume=sol_volume + 1, pairs_min_listing_days=5)

        async def main():
            ex = sim_exchange(sim)
            try:
                return await rank_venue(ex, s, now_ms=sim.market.now_ms)
            finally:
                await ex.close()
        r = asyncio.run(main())
    assert list(r.table.index) == ["BTC/USDT:USDT"]
    assert r.dropped["SOL/USDT:USDT"].startswith("24 h quote volume")
    assert r.dropped["ETH/USDT:USDT"].startswith("listed 3.") and "< 5" in r.dropped["ETH/USDT:USDT"]


@pytest.fixture(scope="module")
def hist(data_dir):
    candles = {c: load_candles(data_dir / f"{c}USDT-1h.parquet") for c in ("SOL", "BTC", "ETH")}
    funding = {c: load_funding(data_dir / f"{c}USDT-funding.parquet") for c in ("SOL", "BTC", "ETH")}
    return candles, funding


def test_history_ranking_uses_only_data_before_the_date(hist):
    candles, funding = hist
    d = pd.Timestamp("2025-09-01", tz="UTC")
    base = history_factors(candles, funding, d)
    rng = np.random.default_rng(1)
    later_c = {k: c.assign(**{col: np.where(c["timestamp"] + pd.Timedelta(hours=1) > d,
                                            c[col] * rng.uniform(0.5, 1.5, len(c)), c[col])
                              for col in ("high", "low", "close", "volume")}) for k, c in candles.items()}
    later_f = {k: f.assign(funding_rate=np.where(f["timestamp"] >= d, -f["funding_rate"] * 7, f["funding_rate"]))
               for k, f in funding.items()}
    pd.testing.assert_frame_equal(history_factors(later_c, later_f, d), base)
    # the candle closing exactly at d is data before d: changing it changes the factors
    touched = {k: c.assign(close=np.where(c["timestamp"] == d - pd.Timedelta(hours=1), c["close"] * 1.01, c["close"]))
               for k, c in candles.items()}
    assert not history_factors(touched, funding, d).equals(base)


def test_selector_evaluation_combines_the_weekly_backtests(hist):
    candles, funding = hist
    s = load_settings(None)
    start, end = pd.Timestamp("2025-06-02", tz="UTC"), pd.Timestamp("2025-06-23", tz="UTC")
    out = evaluate_selector(s, candles, funding, seeds=200, start=start, end=end)
    assert out["weeks"] == 3 and out["period"] == [start.isoformat(), end.isoformat()]
    weeks = [start + pd.Timedelta(days=7 * i) for i in range(3)]
    r = {c: week_returns(s, candles[c], funding[c], c, weeks, ("ema-cross", "buy-and-hold")) for c in candles}
    for k in ("ema-cross", "buy-and-hold"):
        res = out["results"][k]
        assert res["SOL alone"] == pytest.approx(float(np.prod(1 + r["SOL"][k]) - 1), abs=1e-12)
        top1 = [p["ranking"][0] for p in out["picks"]]
        assert res["top-1"] == pytest.approx(float(np.prod([1 + r[c][k].iloc[i] for i, c in enumerate(top1)]) - 1))
        lo = np.prod([1 + min(r[c][k].iloc[i] for c in r) for i in range(3)]) - 1
        hi = np.prod([1 + max(r[c][k].iloc[i] for c in r) for i in range(3)]) - 1
        assert lo <= res["random-1"]["p05"] <= res["random-1"]["p95"] <= hi
    # buy-and-hold over a week: 1x long from the week's first open to its last close, after costs
    c = candles["SOL"].set_index("timestamp")
    wk = c.loc[weeks[0]: weeks[0] + pd.Timedelta(hours=167)]
    gross = wk["close"].iloc[-1] / wk["open"].iloc[0] - 1
    assert r["SOL"]["buy-and-hold"].iloc[0] == pytest.approx(gross, abs=0.004)


def test_pairs_command_prints_80_columns_and_writes_json(tmp_path, monkeypatch):
    from perpbot.cli.main import app

    with three_symbol_sim() as sim:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("PERPBOT_PAIRS_MIN_LISTING_DAYS", "0")
        monkeypatch.setenv("PERPBOT_PAIRS_MIN_QUOTE_VOLUME", "0")
        res = CliRunner().invoke(app, ["pairs", "--exchange", "bitget", "--api-url", sim.base_url,
                                       "--json", str(tmp_path / "p.json")])
    assert res.exit_code == 0, res.output
    assert all(len(line) <= 80 for line in res.output.splitlines())
    body = json.loads((tmp_path / "p.json").read_text())
    assert [r["symbol"] for r in body["ranking"]][:1] and len(body["ranking"]) == 3
    assert {r["symbol"].split("/")[0] for r in body["ranking"]} == {"SOL", "BTC", "ETH"}
    bad = CliRunner().invoke(app, ["pairs", "--exchange", "bitgett"])
    assert bad.exit_code == 2 and "did you mean bitget" in bad.output
