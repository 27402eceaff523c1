"""Worked-number tests of the accounting core, sizing and the compiled account loop.

Every expected number is worked out by hand in the comments (or taken from the Bitget
support article / freqtrade's tests for the liquidation formula).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perpbot.sim.config import AccountConfig
from perpbot.sim.engine import MarketArrays, run_backtest
from perpbot.sim import accounting as A
from perpbot.sim.sizing import SIZING_EQUITY, SIZING_FIXED_FRACTION, position_size, protective_levels


# ---- liquidation price (Bitget isolated formula) -------------------------------------------------
@pytest.mark.parametrize("side, leverage, expected", [
    (1, 5, 8.085709),    # long 5x:  10 * (1 - 1/5) / (1 - 0.01 - 0.0006)
    (-1, 5, 11.874134),  # short 5x: 10 * (1 + 1/5) / (1 + 0.01 + 0.0006)
    (1, 3, 6.738090),    # long 3x:  10 * (1 - 1/3) / (1 - 0.0106)
])
def test_liquidation_price_worked_examples(side, leverage, expected):
    margin = A.initial_margin(1.0, 10.0, leverage)
    assert A.liquidation_price(side, 1.0, 10.0, margin, 0.01, 0.0006) == pytest.approx(expected, abs=5e-7)


def test_liquidation_price_long_1x_cannot_liquidate():
    # margin == notional: L = (10 - 10) / (...) = 0
    assert A.liquidation_price(1, 1.0, 10.0, 10.0, 0.01, 0.0006) == 0.0


def test_maintenance_margin_tiers():
    upper = np.array([50_000.0, 100_000.0, 1_000_000.0])
    mmr = np.array([0.005, 0.008, 0.01])
    assert A.maintenance_margin_rate(1_000.0, upper, mmr) == 0.005
    assert A.maintenance_margin_rate(50_000.0, upper, mmr) == 0.005
    assert A.maintenance_margin_rate(50_000.01, upper, mmr) == 0.008
    assert A.maintenance_margin_rate(5e6, upper, mmr) == 0.01  # beyond the table: last tier


# ---- fees, funding, margin, pnl --------------------------------------------------------------------
def test_fee_funding_margin_pnl():
    assert A.trade_fee(2.0, 150.0, 0.0006) == pytest.approx(0.18)          # 2 * 150 * 0.0006
    assert A.funding_payment(1, 10.0, 150.0, 0.0001) == pytest.approx(0.15)  # long pays 10*150*1e-4
    assert A.funding_payment(-1, 10.0, 150.0, 0.0001) == pytest.approx(-0.15)  # short receives
    assert A.funding_payment(1, 10.0, 150.0, -0.0002) == pytest.approx(-0.30)  # negative rate: long receives
    assert A.initial_margin(3.0, 200.0, 4.0) == pytest.approx(150.0)        # 600 / 4
    assert A.unrealized_pnl(-1, 2.0, 100.0, 90.0) == pytest.approx(20.0)


def test_rounding_to_lot_and_tick():
    assert A.floor_to_step(0.3, 0.1) == 0.3          # not 0.2 from 2.9999999999999996
    assert A.floor_to_step(0.29999, 0.1) == 0.2
    assert A.floor_to_step(66.99, 1.0) == 66.0
    assert A.round_to_step(123.4566, 0.001) == 123.457
    assert A.round_to_step(123.4564, 0.001) == 123.456
    assert A.slipped_price(100.0, True, 0.0002) == pytest.approx(100.02)
    assert A.slipped_price(100.0, False, 0.0002) == pytest.approx(99.98)


# ---- sizing ----------------------------------------------------------------------------------------
def test_fixed_fraction_size():
    # equity 1000, risk 1 % = 10 USDT; stop distance 1 USDT + round-trip fee 2*100*0.0006 = 0.12
    # qty = 10 / 1.12 = 8.928... -> 8.9 at lot 0.1; cap 1000 / (100 * (1/3 + 0.0006)) = 29.94 not binding
    qty = position_size(SIZING_FIXED_FRACTION, 1000.0, 100.0, 1.0, math.nan, 0.01, 1.0, 2.0, 3.0, 0.0006, 0.1)
    assert qty == 8.9


def test_fixed_fraction_size_capped_by_leverage():
    # a 0.1 % stop at 1 % risk wants 10 / (0.1 + 0.12) = 45.45 SOL, but 2x leverage allows
    # 1000 / (100 * (0.5 + 0.0006)) = 19.976 -> 19.9
    qty = position_size(SIZING_FIXED_FRACTION, 1000.0, 100.0, 0.1, math.nan, 0.01, 1.0, 2.0, 2.0, 0.0006, 0.1)
    assert qty == 19.9


def test_equity_size_full_equity_1x():
    # 10,000 / (150 * (1 + 0.0006)) = 66.626... -> 66 whole units
    qty = position_size(SIZING_EQUITY, 10_000.0, 150.0, math.nan, math.nan, 0.0, 1.0, 2.0, 1.0, 0.0006, 1.0)
    assert qty == 66.0


def test_protective_levels_percent_and_atr():
    sl, tp, dist = protective_levels(1, 100.0, 0, 0.02, 0.04, math.nan, 0.001)
    assert (sl, tp) == (98.0, 104.0) and dist == pytest.approx(2.0)
    sl, tp, dist = protective_levels(-1, 100.0, 1, 1.5, 3.0, 0.8, 0.01)  # ATR 0.8: 1.2 and 2.4 away
    assert (sl, tp) == (101.2, 97.6) and dist == pytest.approx(1.2)


# ---- intrabar triggers ------------------------------------------------------------------------------
def test_candle_trigger_rules():
    nan = math.nan
    # long, SL 98, TP 104: both touched in one candle -> stop first (conservative)
    assert A.candle_trigger(1, 100.0, 105.0, 97.0, 98.0, 104.0, nan) == (A.TRIGGER_SL, 98.0)
    # gap down through the stop: fill at the open
    assert A.candle_trigger(1, 96.0, 97.0, 95.0, 98.0, 104.0, nan) == (A.TRIGGER_SL, 96.0)
    # gap up through the take-profit: fill at the (better) open
    assert A.candle_trigger(1, 106.0, 107.0, 105.0, 98.0, 104.0, nan) == (A.TRIGGER_TP, 106.0)
    # liquidation above the stop is hit first
    assert A.candle_trigger(1, 100.0, 100.5, 90.0, 95.0, 104.0, 96.0) == (A.TRIGGER_LIQ, 96.0)
    # short mirror: SL 102 and TP 96 touched -> stop first
    assert A.candle_trigger(-1, 100.0, 103.0, 95.0, 102.0, 96.0, nan) == (A.TRIGGER_SL, 102.0)
    code, price = A.candle_trigger(-1, 100.0, 101.0, 99.0, 102.0, 96.0, nan)
    assert code == A.NO_TRIGGER and math.isnan(price)


# ---- the compiled loop on a hand-made tape -----------------------------------------------------------
def _market(rows, funding_rate=None, funding_mark=None, m1=None):
    ts = pd.Series(pd.date_range("2025-05-04 00:00", periods=len(rows), freq="5min", tz="UTC"))
    df = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    df.insert(0, "timestamp", ts)
    df["volume"] = 1.0
    m = MarketArrays.build(df, "5m", intrabar=m1)
    if funding_rate is not None:
        m.funding_rate[:] = funding_rate
        m.funding_mark[:] = funding_mark
    return m


def test_loop_long_with_funding_then_take_profit():
    # bar0 signal long -> entry at bar1 open 100 (no slippage). capital 1000, lev 5, risk 1 %, SL 1 %, TP 2 %
    # qty = 10 / (1 + 0.12) = 8.928 -> 8.9; entry fee 8.9 * 100 * 0.0006 = 0.534
    # bar2 carries a funding event: rate 0.0001, mark 101 -> pays 8.9 * 101 * 0.0001 = 0.08989
    # bar3 high 102.5 >= TP 102 -> exit at 102: gross 8.9 * 2 = 17.8, exit fee 8.9 * 102 * 0.0006 = 0.54468
    # net = 17.8 - 0.534 - 0.54468 - 0.08989 = 16.63143; final equity 1016.63143
    rows = [(100, 100.5, 99.5, 100), (100, 100.8, 99.6, 100.5), (100.5, 101.5, 100.2, 101),
            (101, 102.5, 100.8, 102.2), (102.2, 102.4, 101.9, 102)]
    rate = np.array([0, 0, 0.0001, 0, 0.0])
    mark = np.array([0, 0, 101.0, 0, 0])
    m = _market(rows, rate, mark)
    cfg = AccountConfig(capital=1000, leverage=5, slippage=0, cooldown_bars=0)
    r = run_backtest(m, np.array([1, 0, 0, 0, 0], dtype=np.int8), cfg)
    assert len(r.trades) == 1
    t = r.trades.iloc[0]
    assert (t.side, t.qty, t.entry_bar, t.exit_bar, t.exit_reason) == (1, 8.9, 1, 3, "take_profit")
    assert t.entry_price == 100 and t.exit_price == 102
    assert t.funding == pytest.approx(0.08989)
    assert t.fees == pytest.approx(0.534 + 0.54468)
    assert t.pnl == pytest.approx(16.63143)
    assert r.equity.iloc[-1] == pytest.approx(1016.63143)
    # equity at bar1 close: 1000 - 0.534 + 8.9 * 0.5 = 1003.916
    assert r.equity.iloc[1] == pytest.approx(1003.916)
    # liquidation price at entry: margin 178, MMR 0.5 % (tier 1): (178 - 890) / (8.9 * (0.0056 - 1))
    assert t.liquidation_price == pytest.approx((178 - 890) / (8.9 * (0.005 + 0.0006 - 1)) , rel=1e-3)
    assert len(r.funding) == 1 and r.funding.amount.iloc[0] == pytest.approx(0.08989)


def test_loop_conservative_vs_1m_resolution():
    # long entered at bar1 open 100; bar1 touches SL 99 and TP 102 -> stop (conservative) ...
    rows = [(100, 100.2, 99.8, 100), (100, 102.5, 98.5, 101), (101, 101, 101, 101)]
    m = _market(rows)
    cfg = AccountConfig(capital=1000, leverage=3, slippage=0, cooldown_bars=0)
    r = run_backtest(m, np.array([1, 0, 0], dtype=np.int8), cfg)
    assert list(r.trades.exit_reason) == ["stop_loss"] and r.trades.exit_price.iloc[0] == 99.0
    # ... unless the 1m candles of bar1 show the take-profit first
    m1_ts = pd.date_range("2025-05-04 00:05", periods=5, freq="1min", tz="UTC")
    m1 = pd.DataFrame({"timestamp": m1_ts, "open": [100, 101, 102.2, 100, 99],
                       "high": [101, 102.5, 102.3, 100.1, 99.5], "low": [99.9, 100.8, 100, 98.5, 98.9],
                       "close": [101, 102.2, 100, 99, 101], "volume": 1.0})
    r = run_backtest(_market(rows, m1=m1), np.array([1, 0, 0], dtype=np.int8), cfg)
    assert list(r.trades.exit_reason) == ["take_profit"] and r.trades.exit_price.iloc[0] == 102.0


def test_loop_liquidation_loses_the_margin():
    # 20x long at 100 with a 10 % stop: liquidation (~95.3) sits above the stop (90) and fills first.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (99, 99, 94, 95), (95, 95, 95, 95)]
    cfg = AccountConfig(capital=1000, leverage=20, slippage=0, sizing="equity", equity_fraction=0.5,
                    stop_loss=0.10, take_profit=0.2, cooldown_bars=0)
    r = run_backtest(_market(rows), np.array([1, 0, 0, 0], dtype=np.int8), cfg)
    t = r.trades.iloc[0]
    assert t.exit_reason == "liquidation"
    # qty = 0.5 * 1000 / (100 * (0.05 + 0.0006)) = 98.81 -> 98.8; margin 494; fee 5.928
    assert t.qty == 98.8
    assert t.pnl == pytest.approx(-(494.0 + 5.928))
    assert r.equity.iloc[-1] == pytest.approx(1000 - 494.0 - 5.928)


def test_loop_risk_vetoes_recorded():
    # a losing trade starts a 2-bar cooldown: the next entry signals are vetoed and recorded
    rows = [(100, 100, 100, 100), (100, 100.1, 98.9, 99), (99, 99.2, 98.8, 99), (99, 99.1, 98.9, 99),
            (99, 99.1, 98.9, 99), (99, 99.1, 98.9, 99)]
    cfg = AccountConfig(capital=1000, leverage=3, slippage=0, cooldown_bars=2, stop_loss=0.01, take_profit=0.05)
    sig = np.array([1, 1, 1, 1, 0, 0], dtype=np.int8)
    r = run_backtest(_market(rows), sig, cfg)
    assert r.trades.exit_reason.iloc[0] == "stop_loss" and r.trades.exit_bar.iloc[0] == 1
    assert list(r.risk_events.event) == ["cooldown", "cooldown"]
    assert list(r.risk_events.bar) == [2, 3]
    assert len(r.trades) == 2 and r.trades.entry_bar.iloc[1] == 4  # allowed again after the cooldown


def test_loop_daily_loss_halt_until_next_utc_day():
    # 5x long, 3 % stop, risk 10 % -> one stop costs ~10 % > the 5 % daily limit: halt for the rest of the day.
    # 288 bars of 5 minutes = one UTC day; the tape starts at 00:00, so bar 288 opens the next day.
    n = 300
    rows = [(100, 100.2, 99.8, 100)] * n
    rows[2] = (100, 100.1, 96.0, 97)  # stop at 97 (3 %) hit in bar 2
    cfg = AccountConfig(capital=1000, leverage=5, slippage=0, cooldown_bars=0, risk=0.10, stop_loss=0.03,
                    take_profit=0.5, max_daily_loss=0.05, max_drawdown=0.5)
    sig = np.ones(n, dtype=np.int8)
    r = run_backtest(_market(rows), sig, cfg)
    t = r.trades.iloc[0]
    assert (t.entry_bar, t.exit_bar, t.exit_reason) == (1, 2, "stop_loss")
    halt = r.risk_events[r.risk_events.event == "daily_loss_halt"]
    assert list(halt.bar) == [2]
    # day loss = pnl / 1000, below -5 %
    assert halt.value.iloc[0] == pytest.approx(t.pnl / 1000.0)
    vetoed = r.risk_events[r.risk_events.event == "halted"]
    assert vetoed.bar.min() == 3 and vetoed.bar.max() == 287 and len(vetoed) == 285  # every signal that day
    assert r.trades.entry_bar.iloc[1] == 288  # trading resumes on the new UTC day


def test_loop_max_drawdown_halt_is_permanent():
    n = 400
    rows = [(100, 100.2, 99.8, 100)] * n
    rows[2] = (100, 100.1, 96.0, 97)
    cfg = AccountConfig(capital=1000, leverage=5, slippage=0, cooldown_bars=0, risk=0.10, stop_loss=0.03,
                    take_profit=0.5, max_daily_loss=1.0, max_drawdown=0.08)
    r = run_backtest(_market(rows), np.ones(n, dtype=np.int8), cfg)
    assert len(r.trades) == 1 and list(r.risk_events.event.unique()) == ["max_drawdown_halt", "halted"]
    assert r.risk_events.bar.iloc[0] == 2 and r.risk_events.bar.iloc[-1] == n - 1


def test_loop_order_below_minimum_is_not_sent():
    # 20 USDT of equity, 1 % risk, 1 % stop at price 100: qty = 0.2 / (1 + 0.12) = 0.178 -> 0.1 (lot);
    # notional 10 USDT >= 5 minimum -> sent. With min_notional 15 it is refused and the veto recorded.
    rows = [(100, 100.2, 99.8, 100)] * 5
    cfg = AccountConfig(capital=20, leverage=3, slippage=0, cooldown_bars=0, min_notional=15.0)
    r = run_backtest(_market(rows), np.array([1, 0, 0, 0, 0], dtype=np.int8), cfg)
    assert len(r.trades) == 0
    assert list(r.risk_events.event) == ["below_min_size"] and r.risk_events.value.iloc[0] == pytest.approx(0.1)
    r = run_backtest(_market(rows), np.array([1, 0, 0, 0, 0], dtype=np.int8), AccountConfig(
        capital=20, leverage=3, slippage=0, cooldown_bars=0, min_notional=5.0))
    assert len(r.trades) == 1 and r.trades.qty.iloc[0] == 0.1 and len(r.risk_events) == 0
