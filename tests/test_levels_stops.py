"""Stop-loss and take-profit at recent support / resistance with a minimum risk:reward (issue 10, item 3):
``stop_mode = "levels"`` on 20,000 real SOLUSDT 5m candles, the scoring rule.

Checked by hand from the candles: every trade's stop-loss is the lowest low of the 96 candles before its entry
minus 0.25 x the signal candle's ATR (a short: the highest high plus it), its take-profit the opposite level,
both on the tick, and the take-profit is at least 1.5 times as far from the fill as the stop-loss; every
``risk_reward`` veto is an entry whose levels give less (or none: the price beyond a level), with that
ratio as its value. The paper replay makes the same trades; the live risk takes the same decisions
(tests/test_risk_engine.py).
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
from perpbot.sim.accounting import round_to_step, slipped_price
from perpbot.sim.config import AccountConfig
from perpbot.strategy.signals import rule_signals

N, BUF, RR, TICK, SLIP = 96, 0.25, 1.5, 0.001, 0.0002


@pytest.fixture(scope="module")
def market(sol5m_path, sol_funding_path):
    return load_market(sol5m_path, "5m", funding_file=sol_funding_path).slice(0, 20_000)


def _settings(tmp_path):
    return load_settings(None, stop_mode="levels", levels_lookback=N, levels_buffer_atr=BUF, min_risk_reward=RR,
                         output_dir=tmp_path, warmup_bars=60)


def _levels(c, atr, bar: int, side: int, fill: float) -> tuple[float, float]:
    if bar < N:  # fewer candles than the look-back: no levels
        return math.nan, math.nan
    lo, hi = c["low"].to_numpy()[bar - N: bar].min(), c["high"].to_numpy()[bar - N: bar].max()
    buf = BUF * atr[bar - 1]
    sl, tp = (lo - buf, hi) if side > 0 else (hi + buf, lo)
    return round_to_step(sl, TICK), round_to_step(tp, TICK)


def test_stops_at_levels_by_hand(market, tmp_path):
    res = backtest_job(_settings(tmp_path), ["scoring"], market=market).runs["scoring"].result
    c = market.candles
    atr = talib.ATR(c["high"].to_numpy(np.float64), c["low"].to_numpy(np.float64), c["close"].to_numpy(np.float64),
                    timeperiod=14)
    t = res.trades
    assert len(t) >= 100
    for tr in t.itertuples():
        sl, tp = _levels(c, atr, tr.entry_bar, tr.side, tr.entry_price)
        assert tr.stop_loss == pytest.approx(sl, abs=1e-9) and tr.take_profit == pytest.approx(tp, abs=1e-9)
        assert abs(tr.take_profit - tr.entry_price) >= RR * abs(tr.entry_price - tr.stop_loss)
    assert set(t.exit_reason) >= {"stop_loss", "take_profit"}
    sig = rule_signals("scoring", c)
    ev = res.risk_events[res.risk_events.event == "risk_reward"]
    assert len(ev) >= 300  # most calls do not offer 1.5 R at the recent levels
    opens = c["open"].to_numpy()
    for e in ev.itertuples():
        side = int(sig[e.bar - 1])
        fill = slipped_price(opens[e.bar], side > 0, SLIP)
        sl, tp = _levels(c, atr, e.bar, side, fill)
        valid = side * (fill - sl) > 0 and side * (tp - fill) > 0
        if valid:
            ratio = abs(tp - fill) / abs(fill - sl)
            assert ratio < RR and e.value == pytest.approx(ratio, rel=1e-9)
        else:  # the fill is already beyond a level: no stop or no target there
            assert math.isnan(e.value)


def test_paper_replay_and_live(market, tmp_path):
    s = _settings(tmp_path)
    part = market.slice(0, 2_000)
    bt = backtest_job(s, ["scoring"], market=part).runs["scoring"].result
    bot, _ = paper_job(s, part, "scoring")
    paper = bot.exchange.result()
    assert len(bt.trades) > 5
    pd.testing.assert_frame_equal(paper.trades[bt.trades.columns].reset_index(drop=True),
                                  bt.trades.reset_index(drop=True))
    assert (paper.risk_events.event == "risk_reward").sum() == (bt.risk_events.event == "risk_reward").sum() > 0
    assert AccountConfig.for_live(s, "scoring").stop_mode == "levels"  # the live node places them too
