"""Leverage set per trade from volatility and the decision's size (issue 10, item 3):
``leverage_mode = "adaptive"`` on 20,000 real SOLUSDT 5m candles, ema-cross, ``leverage`` 10.

Checked by hand from the candles: every trade's leverage is floor(10 x min(1, 0.3 % / (ATR / fill))) within
[2, 10], with the ATR (TA-Lib, 14) of its signal candle and its fill price; its margin is qty x entry / that
leverage; the sizes, fills and PnL are those of the same run at a fixed 10x (the risk sizing decides the
quantity, the leverage only the margin and the liquidation price), and the liquidation price moves away
as the leverage drops. The paper replay makes the same trades; live: tests/test_live_leverage.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib

from perpbot.app.jobs import backtest_job
from perpbot.app.paper import paper_job
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.sim.config import AccountConfig
from perpbot.sim.sizing import trade_leverage


@pytest.fixture(scope="module")
def market(sol5m_path, sol_funding_path):
    return load_market(sol5m_path, "5m", funding_file=sol_funding_path).slice(0, 20_000)


def _settings(tmp_path, **kw):
    return load_settings(None, leverage=10, output_dir=tmp_path, warmup_bars=60, **kw)


def test_the_formula_by_hand():
    # ATR 0.6 % of the price, target 0.3 %: half of 10x; a size scale of 0.5 halves it again (floor 2.5 -> 2)
    assert trade_leverage(True, 10.0, 1.0, 0.003, 0.6, 100.0, 1.0) == 5.0
    assert trade_leverage(True, 10.0, 1.0, 0.003, 0.6, 100.0, 0.5) == 2.0
    assert trade_leverage(True, 10.0, 3.0, 0.003, 6.0, 100.0, 1.0) == 3.0   # the floor
    assert trade_leverage(True, 10.0, 1.0, 0.003, 0.1, 100.0, 1.0) == 10.0  # calm: the full leverage
    assert trade_leverage(True, 10.0, 1.0, 0.003, math.nan, 100.0, 1.0) == 10.0
    assert trade_leverage(False, 10.0, 1.0, 0.003, 6.0, 100.0, 0.1) == 10.0  # fixed


def test_each_trade_gets_its_leverage_from_its_candle(market, tmp_path):
    fixed = backtest_job(_settings(tmp_path), ["ema-cross"], market=market).runs["ema-cross"].result.trades
    adaptive = backtest_job(_settings(tmp_path, leverage_mode="adaptive", leverage_min=2, leverage_target_atr=0.3),
                            ["ema-cross"], market=market).runs["ema-cross"].result.trades
    c = market.candles
    atr = talib.ATR(c["high"].to_numpy(np.float64), c["low"].to_numpy(np.float64), c["close"].to_numpy(np.float64),
                    timeperiod=14)
    assert len(adaptive) >= 100
    for t in adaptive.itertuples():
        a = atr[t.entry_bar - 1]  # known at the signal candle's close
        want = max(2.0, min(10.0, math.floor(10 * min(1.0, 0.003 / (a / t.entry_price)) + 1e-9)))
        assert t.leverage == want, (t.trade_id, a, t.entry_price)
        assert t.margin == pytest.approx(t.qty * t.entry_price / want, rel=1e-12)
    assert adaptive.leverage.nunique() >= 3 and adaptive.leverage.min() < 10
    same = ["side", "qty", "entry_bar", "entry_price", "exit_bar", "exit_price", "exit_reason", "pnl"]
    pd.testing.assert_frame_equal(adaptive[same], fixed[same])
    lower = adaptive.leverage < 10
    longs = lower & (adaptive.side > 0)
    assert (adaptive.liquidation_price[longs] < fixed.liquidation_price[longs]).all()  # further from the entry
    shorts = lower & (adaptive.side < 0)
    assert (adaptive.liquidation_price[shorts] > fixed.liquidation_price[shorts]).all()


def test_paper_replay_and_live(market, tmp_path):
    s = _settings(tmp_path, leverage_mode="adaptive", leverage_target_atr=0.3)
    part = market.slice(0, 3_000)
    bt = backtest_job(s, ["ema-cross"], market=part).runs["ema-cross"].result.trades
    bot, _ = paper_job(s, part, "ema-cross")
    paper = bot.exchange.result().trades
    assert len(bt) > 5 and bt.leverage.nunique() >= 2
    pd.testing.assert_frame_equal(paper[bt.columns].reset_index(drop=True), bt.reset_index(drop=True))
    assert AccountConfig.for_live(s, "ema-cross").adaptive_leverage  # live sets it per entry (test_live_leverage)
    with pytest.raises(ValueError, match="leverage_min 1.5 is not a whole number"):
        AccountConfig.for_live(_settings(tmp_path, leverage_mode="adaptive", leverage_min=1.5), "ema-cross")
