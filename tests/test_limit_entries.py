"""Limit (post-only) entries in the account core (issue 10, item 3): ``entry_order = "limit"``.

On 20,000 real SOLUSDT 5m candles, ema-cross with limit entries 0.05 % from the signal candle's
close, resting one candle. Checked from the candles by hand: every limit fill is at its limit
price (the close rounded to the tick away from the market), in a candle that traded THROUGH it
(a touch is not a fill) and did not open through it (post-only would be rejected); its entry fee
is the maker fee on that price; every unfilled limit is a ``limit_unfilled`` risk event explained
by its candle; with the market fallback an expired limit becomes a taker entry at the next open.
The paper loop (same kernel) makes the same trades as the backtest; live: tests/test_live_limit_entries.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perpbot.app.jobs import backtest_job
from perpbot.app.paper import paper_job
from perpbot.config import load_settings
from perpbot.data.market import load_market

OFF, MAKER, TAKER, SLIP, TICK = 0.0005, 0.0002, 0.0006, 0.0002, 0.001


@pytest.fixture(scope="module")
def market(sol5m_path, sol_funding_path):
    return load_market(sol5m_path, "5m", funding_file=sol_funding_path).slice(0, 20_000)


def _settings(tmp_path, **kw):
    return load_settings(None, entry_order="limit", limit_offset=100 * OFF, output_dir=tmp_path, warmup_bars=60,
                         **kw)


def _limit_price(close: float, side: int) -> float:
    raw = close * (1 - OFF) if side > 0 else close * (1 + OFF)
    return (math.floor(raw / TICK + 1e-9) if side > 0 else math.ceil(raw / TICK - 1e-9)) * TICK


def test_limit_fills_only_where_the_price_traded_through(market, tmp_path):
    s = _settings(tmp_path)
    res = backtest_job(s, ["ema-cross"], market=market).runs["ema-cross"].result
    c = market.candles
    o, h, lo, cl = (c[k].to_numpy() for k in ("open", "high", "low", "close"))
    t = res.trades
    assert len(t) >= 100
    side = np.where(t.side.astype(str).isin(["long", "1"]), 1, -1) if t.side.dtype == object else t.side.to_numpy()
    for tr, sd in zip(t.itertuples(), side):
        b = int(tr.entry_bar)  # the signal closed at b - 1, the order rested in candle b (timeout 1)
        want = _limit_price(cl[b - 1], int(sd))
        assert tr.entry_price == pytest.approx(want, abs=1e-9)
        if sd > 0:
            assert lo[b] < tr.entry_price < o[b]   # traded through, not opened through
        else:
            assert o[b] < tr.entry_price < h[b]
        assert tr.entry_fee == pytest.approx(tr.qty * tr.entry_price * MAKER, rel=1e-12)  # maker fee, no slippage
    ev = res.risk_events[res.risk_events.event == "limit_unfilled"]
    assert len(ev) >= 50
    for e in ev.itertuples():
        k, price = int(e.bar), float(e.value)
        # placed in candle k - 1 and not traded through (expired), or placed in k and opened through (rejected)
        expired = (price < cl[k - 2] and lo[k - 1] >= price) or (price > cl[k - 2] and h[k - 1] <= price)
        rejected = (price < cl[k - 1] and o[k] <= price) or (price > cl[k - 1] and o[k] >= price)
        assert expired or rejected, (k, price)
    # cheaper than market entries: the maker fee on every entry
    mkt = backtest_job(s.model_copy(update={"entry_order": "market"}), ["ema-cross"], market=market
                       ).runs["ema-cross"].result
    assert (mkt.trades.entry_fee / (mkt.trades.qty * mkt.trades.entry_price)).round(10).eq(TAKER).all()


def test_market_fallback_enters_at_the_next_open(market, tmp_path):
    s = _settings(tmp_path, limit_fallback="market")
    res = backtest_job(s, ["ema-cross"], market=market).runs["ema-cross"].result
    o = market.candles["open"].to_numpy()
    ev = res.risk_events[res.risk_events.event == "limit_unfilled"]
    fell_back = res.trades[res.trades.entry_bar.isin(ev.bar)]
    assert len(fell_back) >= 20
    for tr in fell_back.itertuples():
        sd = 1 if str(tr.side) in ("long", "1") else -1
        assert tr.entry_price == pytest.approx(o[int(tr.entry_bar)] * (1 + sd * SLIP), rel=1e-12)  # taker, slipped
        assert tr.entry_fee == pytest.approx(tr.qty * tr.entry_price * TAKER, rel=1e-12)


def test_paper_replay_with_limit_entries_equals_the_backtest(market, tmp_path):
    s = _settings(tmp_path, limit_timeout_bars=3, limit_fallback="market")
    replay = market.slice(0, 3_000)
    bt = backtest_job(s, ["ema-cross"], market=replay).runs["ema-cross"].result
    bot, _ = paper_job(s, replay, "ema-cross")
    paper = bot.exchange.result()
    assert (bt.risk_events.event == "limit_unfilled").sum() >= 5 and len(bt.trades) >= 20
    pd.testing.assert_frame_equal(paper.trades, bt.trades)
    pd.testing.assert_frame_equal(paper.risk_events, bt.risk_events)
    np.testing.assert_array_equal(paper.equity.to_numpy(), bt.equity.to_numpy())


def test_live_takes_limit_entries(tmp_path):
    from perpbot.sim.config import AccountConfig

    cfg = AccountConfig.for_live(_settings(tmp_path), "ema-cross")  # sent live (tests/test_live_limit_entries.py)
    assert cfg.limit_offset == OFF and cfg.maker_fee == MAKER
