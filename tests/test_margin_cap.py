"""Isolated margin caps the loss: worked numbers for gaps past the liquidation price, every
other path that could lose more than the margin, and a property test over random candle paths.

Convention (``perpbot.sim.accounting``, sources there): the entry fee is paid from the
balance at the open; a liquidation loses exactly the position margin, settled at the bankruptcy
price ``B = P - d * M / S`` or better; a bar opening beyond the liquidation price liquidates even
when it also gapped through the stop; any close that would cost more than the margin is settled
as a liquidation; funding comes out of the margin only down to the liquidation level. So one
trade loses at most its initial margin + entry fee, and equity never goes below zero.

Common set-up of the worked examples: capital 1,000 USDT, taker fee 0.06 %, no slippage unless
stated, sizing "equity" with fraction 1 (margin + entry fee = the whole equity), lot 0.1 SOL,
stop-loss 1 %, take-profit 2 %, limits off. SOLUSDT tier 1 (notional <= 50,000): MMR 0.5 %.

* 20x at 100: qty = 1000 / (100 x (1/20 + 0.0006)) = 197.628 -> 197.6; margin 197.6 x 100 / 20
  = 988.0; entry fee 197.6 x 100 x 0.0006 = 11.856.
  Long: L = (988 - 19,760) / (197.6 x (0.0056 - 1)) = 95.534996, B = 100 - 988 / 197.6 = 95.
  Short: L = (988 + 19,760) / (197.6 x 1.0056) = 104.415274, B = 105.
* 5x at 100: qty = 1000 / (100 x 0.2006) = 49.85 -> 49.8; margin 996.0; entry fee 2.988.
  Long: L = (996 - 4,980) / (49.8 x (0.0056 - 1)) = 80.450523, B = 80.
  Short: L = (996 + 4,980) / (49.8 x 1.0056) = 119.331742, B = 120.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perpbot.sim.config import AccountConfig
from perpbot.sim.engine import MarketArrays, run_backtest
from perpbot.sim import accounting as A
from perpbot.exchange.simulated import SimulatedExchange
from perpbot.sim.sizing import SIZING_EQUITY, position_size

EQUITY_ALL = dict(capital=1000.0, sizing="equity", equity_fraction=1.0, cooldown_bars=0,
                  max_drawdown=1.0, max_daily_loss=1.0)


def _market(rows, funding_rate=None, funding_mark=None, start="2025-05-04 00:00"):
    ts = pd.Series(pd.date_range(start, periods=len(rows), freq="5min", tz="UTC"))
    df = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    df.insert(0, "timestamp", ts)
    df["volume"] = 1.0
    m = MarketArrays.build(df, "5m")
    if funding_rate is not None:
        m.funding_rate[:] = funding_rate
        m.funding_mark[:] = funding_mark
    return m


def _gap_tape(gap_open: float):
    """Entry at bar 1's open 100 (signal of bar 0); bar 2 opens (and stays) at ``gap_open``."""
    flat = (100.0, 100.0, 100.0, 100.0)
    g = (gap_open, gap_open, gap_open, gap_open)
    return [flat, flat, g, g]


# ---- the reported example and its mirror images: a gap past the stop AND the liquidation ---------
@pytest.mark.parametrize("side, leverage, gap_open, qty, margin, fee, liq, bankrupt", [
    # long 20x, a 30 % gap (the reported case). Before the fix: stop filled at the open 70,
    # gross 197.6 x -30 = -5,928, exit fee 8.2992, pnl -5,948.1552, balance -4,948.1552.
    (1, 20, 70.0, 197.6, 988.0, 11.856, 95.534996, 95.0),
    # short 20x, +30 %. Before: stop at 130, pnl -5,928 - 11.856 - 15.4128 = -5,955.2688.
    (-1, 20, 130.0, 197.6, 988.0, 11.856, 104.415274, 105.0),
    # long 5x, -30 % (past L 80.45). Before: pnl -1,494 - 2.988 - 2.0916 = -1,499.0796.
    (1, 5, 70.0, 49.8, 996.0, 2.988, 80.450523, 80.0),
    # short 5x, +30 % (past L 119.33). Before: pnl -1,494 - 2.988 - 2.7324 = -1,500.8724.
    (-1, 5, 130.0, 49.8, 996.0, 2.988, 119.331742, 120.0),
])
def test_gap_past_liquidation_loses_only_the_margin(side, leverage, gap_open, qty, margin, fee, liq, bankrupt):
    """The bar opens beyond the liquidation price: liquidation (not the stop) decides the fill; the
    position is settled at the bankruptcy price (exit fee 0: no margin left for the insurance fund),
    the trade loses margin + entry fee and the account keeps 1,000 - margin - fee."""
    cfg = AccountConfig(leverage=leverage, slippage=0.0, stop_loss=0.01, take_profit=0.02, **EQUITY_ALL)
    r = run_backtest(_market(_gap_tape(gap_open)), np.array([side, 0, 0, 0], dtype=np.int8), cfg)
    assert len(r.trades) == 1
    t = r.trades.iloc[0]
    assert (t.side, t.qty, t.entry_price, t.exit_bar, t.exit_reason) == (side, qty, 100.0, 2, "liquidation")
    assert t.margin == pytest.approx(margin, abs=1e-9)
    assert t.liquidation_price == pytest.approx(liq, abs=5e-7)
    assert t.exit_price == pytest.approx(bankrupt, abs=1e-9)
    assert t.gross_pnl == pytest.approx(-margin, abs=1e-9)
    assert t.exit_fee == 0.0
    assert t.pnl == pytest.approx(-(margin + fee), abs=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(1000.0 - margin - fee, abs=1e-9)
    assert r.equity.min() >= 0.0


def test_gap_past_liquidation_but_not_bankruptcy_books_the_rest_of_the_margin_as_clearance():
    """Long 20x, the bar opens at 95.2: beyond L 95.535 (and the stop 99) but above B 95.
    Before the fix the stop filled at 95.2 (exit reason stop-loss). Now it is a liquidation at the
    open: gross 197.6 x (95.2 - 100) = -948.48, clearance = 988 - 948.48 = 39.52 to the insurance
    fund, pnl = -948.48 - 11.856 - 39.52 = -999.856 (= margin + entry fee)."""
    cfg = AccountConfig(leverage=20, slippage=0.0, stop_loss=0.01, take_profit=0.02, **EQUITY_ALL)
    r = run_backtest(_market(_gap_tape(95.2)), np.array([1, 0, 0, 0], dtype=np.int8), cfg)
    t = r.trades.iloc[0]
    assert t.exit_reason == "liquidation" and t.exit_price == 95.2
    assert t.gross_pnl == pytest.approx(-948.48, abs=1e-9)
    assert t.exit_fee == pytest.approx(39.52, abs=1e-9)
    assert t.pnl == pytest.approx(-999.856, abs=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(0.144, abs=1e-9)


def test_real_crash_gap_at_20x_loses_only_the_margin(c5):
    """Real SOLUSDT 5m candles of the 2025-10-10 crash with the two crash bars (21:10, 21:15)
    missing, as when a feed stalls: the 21:20 bar opens at 149.35, 24.2 % below the 21:05 close
    197.07 (past the stop and the liquidation price).

    Long 20x entered at the 21:05 open 197.99: qty = 1000 / (197.99 x 0.0506) = 99.82 -> 99.8;
    margin 99.8 x 197.99 / 20 = 987.9701; entry fee 99.8 x 197.99 x 0.0006 = 11.8556412;
    B = 197.99 x (1 - 1/20) = 188.0905; stop 196.01 (1 %). Before the fix: stop at 149.35,
    gross 99.8 x (149.35 - 197.99) = -4,854.272, exit fee 8.943078, balance -3,875.07.
    Now: liquidation settled at B, pnl -999.8257412, balance 0.1742588."""
    ts = pd.to_datetime(["2025-10-10 21:00", "2025-10-10 21:05", "2025-10-10 21:20", "2025-10-10 21:25"], utc=True)
    rows = c5[c5.timestamp.isin(ts)].reset_index(drop=True)
    assert list(rows.open) == [196.85, 197.99, 149.35, 175.57]
    m = MarketArrays.build(rows, "5m")
    cfg = AccountConfig(leverage=20, slippage=0.0, stop_loss=0.01, take_profit=0.02, **EQUITY_ALL)
    r = run_backtest(m, np.array([1, 0, 0, 0], dtype=np.int8), cfg)
    t = r.trades.iloc[0]
    assert (t.qty, t.entry_price, t.stop_loss, t.exit_reason) == (99.8, 197.99, 196.01, "liquidation")
    assert t.margin == pytest.approx(987.9701, abs=1e-9)
    assert t.exit_price == pytest.approx(188.0905, abs=1e-9)
    assert t.pnl == pytest.approx(-999.8257412, abs=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(0.1742588, abs=1e-9)


# ---- the other paths to a loss beyond the margin ---------------------------------------------------
def test_candle_trigger_open_beyond_liquidation_liquidates_before_the_stop():
    nan = math.nan
    # long, stop 99 above liquidation 95.5: open 70 is beyond both -> liquidation at the open
    assert A.candle_trigger(1, 70.0, 70.0, 70.0, 99.0, 102.0, 95.5) == (A.TRIGGER_LIQ, 70.0)
    # open 97 between them: the stop fills at the open (the liquidation is not reached at the open)
    assert A.candle_trigger(1, 97.0, 97.0, 90.0, 99.0, 102.0, 95.5) == (A.TRIGGER_SL, 97.0)
    # short mirror: stop 101, liquidation 104.4; open 130 -> liquidation, open 102 -> stop
    assert A.candle_trigger(-1, 130.0, 130.0, 130.0, 101.0, 98.0, 104.4) == (A.TRIGGER_LIQ, 130.0)
    assert A.candle_trigger(-1, 102.0, 110.0, 102.0, 101.0, 98.0, 104.4) == (A.TRIGGER_SL, 102.0)
    # no stop at all: still the liquidation at the open
    assert A.candle_trigger(1, 70.0, 71.0, 69.0, nan, nan, 95.5) == (A.TRIGGER_LIQ, 70.0)


def test_close_settlement_and_bankruptcy_price():
    # bankruptcy: long 197.6 @ 100 with margin 988 -> 95; short -> 105
    assert A.bankruptcy_price(1, 197.6, 100.0, 988.0) == pytest.approx(95.0)
    assert A.bankruptcy_price(-1, 197.6, 100.0, 988.0) == pytest.approx(105.0)
    # ordinary stop at 99, no slippage: fill 99, gross -197.6, fee 197.6 x 99 x 0.0006 = 11.73744
    fill, gross, fee, cash, liq = A.close_settlement(1, 197.6, 100.0, 988.0, 99.0, 0.0006, 0.0, False)
    assert (fill, liq) == (99.0, False)
    assert gross == pytest.approx(-197.6) and fee == pytest.approx(11.73744) and cash == pytest.approx(-209.33744)
    # the same stop with 5 % slippage fills at 94.05 < B 95: settled as a liquidation at 95
    fill, gross, fee, cash, liq = A.close_settlement(1, 197.6, 100.0, 988.0, 99.0, 0.0006, 0.05, False)
    assert (fill, gross, fee, cash, liq) == (pytest.approx(95.0), pytest.approx(-988.0), 0.0, -988.0, True)


def test_stop_fill_slipping_past_bankruptcy_is_capped():
    """Long 20x with 2 % slippage: entry fill 100 x 1.02 = 102; qty = 1000 / (102 x 0.0506) = 193.75
    -> 193.7; margin 193.7 x 102 / 20 = 987.87; entry fee 11.85444; B = 102 - 5.1 = 96.9;
    L = (987.87 - 19,757.4) / (193.7 x (0.0056 - 1)) = 97.445696; stop 4 % = 97.92.
    Bar 2 (low 97.5) touches the stop, not L: the stop sells at 97.92 x 0.98 = 95.9616 < B.
    Before the fix: gross 193.7 x -6.0384 = -1,169.638, exit fee 11.153, balance -192.65.
    Now: settled as a liquidation at B: pnl -987.87 - 11.85444 = -999.72444, balance 0.27556."""
    cfg = AccountConfig(leverage=20, slippage=0.02, stop_loss=0.04, take_profit=0.5, **EQUITY_ALL)
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 100, 97.5, 98), (98, 98, 98, 98)]
    r = run_backtest(_market(rows), np.array([1, 0, 0, 0], dtype=np.int8), cfg)
    t = r.trades.iloc[0]
    assert (t.qty, t.entry_price, t.stop_loss, t.exit_bar, t.exit_reason) == (193.7, 102.0, 97.92, 2, "liquidation")
    assert t.liquidation_price == pytest.approx(97.445696, abs=5e-7)
    assert t.exit_price == pytest.approx(96.9, abs=1e-9) and t.exit_fee == 0.0
    assert t.pnl == pytest.approx(-999.72444, abs=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(0.27556, abs=1e-9)


def test_huge_funding_rate_is_charged_only_down_to_the_liquidation_level():
    """Long 5x (qty 49.8 @ 100, margin 996, entry fee 2.988); bar 2 carries a funding rate of 0.5
    (50 %) at mark 100: the payment would be 49.8 x 100 x 0.5 = 2,490 (2.5 x the margin).
    Bitget takes it from the margin only down to the maintenance level: room = 996 + 0 -
    (0.005 + 0.0006) x 49.8 x 100 = 968.112, so the margin is 27.888 and L = (27.888 - 4,980) /
    (49.8 x (0.0056 - 1)) = 100. Bar 2 opens at 99.9 <= L: liquidation at the open; B = 100 -
    27.888 / 49.8 = 99.44, gross 49.8 x -0.1 = -4.98, clearance 27.888 - 4.98 = 22.908.
    pnl = -4.98 - 2.988 - 22.908 - 968.112 = -998.988 (= margin + entry fee). Before the fix the
    funding row said 2,490 and the liquidation booked a negative fee of -1,498.98."""
    cfg = AccountConfig(leverage=5, slippage=0.0, stop_loss=0.01, take_profit=0.02, **EQUITY_ALL)
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (99.9, 100, 99.8, 99.9), (99.9, 99.9, 99.9, 99.9)]
    m = _market(rows, np.array([0, 0, 0.5, 0]), np.array([0, 0, 100.0, 0]))
    r = run_backtest(m, np.array([1, 0, 0, 0], dtype=np.int8), cfg)
    assert len(r.funding) == 1 and r.funding.amount.iloc[0] == pytest.approx(968.112, abs=1e-9)
    t = r.trades.iloc[0]
    assert (t.exit_bar, t.exit_reason, t.exit_price) == (2, "liquidation", 99.9)
    assert t.liquidation_price == pytest.approx(100.0, abs=1e-9)
    assert t.exit_fee == pytest.approx(22.908, abs=1e-9)
    assert t.funding == pytest.approx(968.112, abs=1e-9)
    assert t.pnl == pytest.approx(-998.988, abs=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(1.012, abs=1e-9)


def test_funding_charge_worked_numbers():
    # long 1 @ 10, margin 2, MMR 0.01, taker 0.0006, mark 9, rate 0.5: 4.5 due, room 2 - 1 - 0.0954
    assert A.funding_charge(1, 1.0, 10.0, 2.0, 9.0, 0.5, 0.01, 0.0006) == pytest.approx(0.9046)
    # a small payment is charged in full; received funding is never capped
    assert A.funding_charge(1, 1.0, 10.0, 2.0, 9.0, 0.0001, 0.01, 0.0006) == pytest.approx(0.0009)
    assert A.funding_charge(-1, 1.0, 10.0, 2.0, 9.0, 0.5, 0.01, 0.0006) == pytest.approx(-4.5)
    # in profit the cap is the margin itself: short 1 @ 10, margin 2, mark 5, rate -1 -> 5 due, 2 taken
    assert A.funding_charge(-1, 1.0, 10.0, 2.0, 5.0, -1.0, 0.01, 0.0006) == pytest.approx(2.0)


def test_reversal_signal_at_a_gapped_open_liquidates_first():
    """Long 20x; the short signal of bar 1 acts at bar 2's open 70, which is past L: the long is
    liquidated first (pnl -999.856, balance 0.144), then the short entry is sized on 0.144 USDT:
    0.144 / (70 x 0.0506) = 0.04 -> 0 at lot 0.1 -> vetoed (below_min_size). Before the fix the
    stop filled at 70 and the account had -4,948.1552 USDT (veto "no_equity")."""
    cfg = AccountConfig(leverage=20, slippage=0.0, stop_loss=0.01, take_profit=0.02, **EQUITY_ALL)
    r = run_backtest(_market(_gap_tape(70.0)), np.array([1, -1, 0, 0], dtype=np.int8), cfg)
    assert list(r.trades.exit_reason) == ["liquidation"]
    assert r.trades.pnl.iloc[0] == pytest.approx(-999.856, abs=1e-9)
    assert list(r.risk_events.event) == ["below_min_size"]
    assert r.equity.iloc[-1] == pytest.approx(0.144, abs=1e-9)


def test_trailing_stop_gapped_past_liquidation_liquidates():
    """Long 20x, 1 % trailing stop: bar 1 reaches 110 so the stop trails to 108.9; bar 2 opens at 70,
    past L 95.535 (the liquidation price does not trail): liquidation at B 95, pnl -999.856.
    Before the fix: trailing stop at 70, pnl -5,948.1552."""
    cfg = AccountConfig(leverage=20, slippage=0.0, stop_loss=0.01, take_profit=0.5, trailing_stop=0.01, **EQUITY_ALL)
    rows = [(100, 100, 100, 100), (100, 110, 100, 109), (70, 70, 70, 70), (70, 70, 70, 70)]
    r = run_backtest(_market(rows), np.array([1, 0, 0, 0], dtype=np.int8), cfg)
    t = r.trades.iloc[0]
    assert (t.exit_bar, t.exit_reason, t.exit_price) == (2, "liquidation", 95.0)
    assert t.pnl == pytest.approx(-999.856, abs=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(0.144, abs=1e-9)


def test_end_of_data_and_manual_close_cannot_slip_past_the_margin():
    """Long 20x with 2 % slippage (qty 193.7 @ 102, margin 987.87, fee 11.85444, B 96.9, L 97.4457),
    no stop; the last close 97.5 stays above L. Closing there sells at 97.5 x 0.98 = 95.55 < B:
    settled as a liquidation at B, pnl -999.72444, in the backtest (end of data) and through the
    paper exchange's operator force-exit alike. Before the fix: pnl 193.7 x -6.45 - 11.85444 -
    11.1 = -1,272.34, balance -272.34."""
    cfg = AccountConfig(leverage=20, slippage=0.02, stop_loss=0.0, take_profit=0.0, **EQUITY_ALL)
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 100, 97.5, 97.5)]
    r = run_backtest(_market(rows), np.array([1, 0, 0], dtype=np.int8), cfg)
    t = r.trades.iloc[0]
    assert (t.exit_bar, t.exit_reason, t.exit_price) == (2, "liquidation", pytest.approx(96.9, abs=1e-9))
    assert t.pnl == pytest.approx(-999.72444, abs=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(0.27556, abs=1e-9)
    ex = SimulatedExchange(cfg, "5m")
    times = pd.date_range("2025-05-04 00:00", periods=3, freq="5min", tz="UTC")
    for k, (o, h, lo, c) in enumerate(rows):
        ex.on_candle(times[k], o, h, lo, c)
        if k == 0:
            ex.set_signal(1)
    up = ex.close_all(manual=True)
    assert list(up.trades.exit_reason) == ["liquidation"]
    assert up.trades.pnl.iloc[0] == pytest.approx(-999.72444, abs=1e-9)
    assert ex.equity == pytest.approx(0.27556, abs=1e-9)


def test_entry_sizing_keeps_margin_plus_fee_within_equity():
    """floor_to_step's 1e-9 tolerance must not round a size up past the equity: equity
    299.99999995 at price 100, 1x, no fee, lot 1 -> 2.9999999995 SOL, which the tolerance floors
    to 3 (margin 300 > equity: a full loss would leave -5e-8 USDT). The size drops one lot to 2."""
    qty = position_size(SIZING_EQUITY, 299.99999995, 100.0, math.nan, math.nan, 0.0, 1.0, 2.0, 1.0, 0.0, 1.0)
    assert qty == 2.0
    rng = np.random.default_rng(3)
    for _ in range(2000):
        equity, price, lev = rng.uniform(1, 1e5), rng.uniform(0.01, 1e4), rng.uniform(1, 125)
        fee, lot = rng.choice([0.0, 0.0006, 0.01]), rng.choice([0.001, 0.01, 0.1, 1.0])
        qty = position_size(SIZING_EQUITY, equity, price, math.nan, math.nan, 0.0, 1.0, 2.0, lev, fee, lot)
        assert equity - A.trade_fee(qty, price, fee) >= A.initial_margin(qty, price, lev)


def test_limit_entry_with_a_maker_fee_above_the_taker_fee_still_fits_the_equity():
    """A limit entry pays the maker fee, which the settings allow above the taker fee (taker_fee = 0,
    maker_fee = 0.1 %). Long 20x, sizing "equity" with fraction 1, a post-only buy 1 % under the signal
    close 100: 99.0, filled in bar 1 (low 98.5). Sized with the taker fee 0 (before the fix): qty =
    1000 / (99 x 0.05) = 202.02 -> 202.0, margin 999.9 + maker fee 19.998 = 1,019.898 > 1,000, and
    the bar-2 gap to 70 (past L) left the account at -19.898 USDT. Sized with the fee it pays:
    1000 / (99 x (0.05 + 0.001)) = 198.06 -> 198.0; margin 198 x 99 / 20 = 980.1, fee 19.602;
    L = (980.1 - 19,602) / (198 x (0.005 - 1)) = 94.522613, bankruptcy 99 - 980.1 / 198 = 94.05:
    liquidation, pnl -999.702, the account keeps 0.298."""
    cfg = AccountConfig(leverage=20, slippage=0.0, taker_fee=0.0, maker_fee=0.001, limit_offset=0.01,
                        stop_loss=0.01, take_profit=0.02, **EQUITY_ALL)
    rows = [(100, 100, 100, 100), (100, 100, 98.5, 99), (70, 70, 70, 70), (70, 70, 70, 70)]
    r = run_backtest(_market(rows), np.array([1, 0, 0, 0], dtype=np.int8), cfg)
    t = r.trades.iloc[0]
    assert (t.entry_bar, t.entry_price, t.exit_bar, t.exit_reason) == (1, pytest.approx(99.0, abs=1e-9), 2, "liquidation")
    assert t.qty == 198.0 and t.margin == pytest.approx(980.1, abs=1e-9)
    assert t.entry_fee == pytest.approx(19.602, abs=1e-9)
    assert t.liquidation_price == pytest.approx(94.522613, abs=5e-7)
    assert t.exit_price == pytest.approx(94.05, abs=1e-9)
    assert t.pnl == pytest.approx(-999.702, abs=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(0.298, abs=1e-9) and r.equity.min() >= 0.0
