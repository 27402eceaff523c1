"""Isolated margin caps the loss on a multi-symbol account too (the portfolio loop,
:mod:`perpbot.sim.portfolio_kernel`, and its paper exchange): worked numbers for two symbols gapping
past their liquidation prices in the same bar, the margin budget's rounding, and a property test over
random portfolios (2-3 symbols on one balance, random budgets, leverage up to the venue maximum,
adaptive leverage, support / resistance stops, limit entries, extreme funding).

Conventions as ``test_margin_cap.py`` (a liquidation loses exactly the position margin, settled at the
bankruptcy price B; a trade loses at most its initial margin + entry fee); on one account the entries
share the wallet balance, each capped at the balance minus the other positions' margin, so the account's
equity can never go below zero, whatever the candles do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpbot.exchange.simulated_portfolio import PortfolioExchange
from perpbot.sim import kernel as K
from perpbot.sim import portfolio_kernel as PK
from perpbot.sim.config import AccountConfig
from perpbot.sim.engine import MarketArrays
from perpbot.sim.portfolio import PortfolioBook, PortfolioBudget, run_portfolio_backtest
from test_margin_cap_property import BARS_PER_PATH, MAX_LEVERAGE, TOL, _paths

LIMITS_OFF = dict(cooldown_bars=0, max_drawdown=1.0, max_daily_loss=1.0)


def _market(rows):
    ts = pd.Series(pd.date_range("2025-05-04 00:00", periods=len(rows), freq="5min", tz="UTC"))
    df = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    df.insert(0, "timestamp", ts)
    df["volume"] = 1.0
    return MarketArrays.build(df, "5m")


def _tape(gap_open: float):
    flat, g = (100.0,) * 4, (gap_open,) * 4
    return [flat, flat, g, g]


def test_two_symbols_gapping_past_liquidation_lose_only_their_margins():
    """Capital 1,000 USDT, taker fee 0.06 %, no slippage, sizing "equity" with fraction 0.5, lot 0.1,
    stop 1 %, take-profit 2 %, no budget limit. Both signals act at bar 1's open 100, A first:

    * A long 20x: qty = 0.5 x 1000 / (100 x 0.0506) = 98.81 -> 98.8; margin 494.0, fee 5.928;
      balance 994.072; B = 100 - 494 / 98.8 = 95, L = (494 - 9,880) / (98.8 x -0.9944) = 95.535.
    * B short 5x: sized on the balance, 0.5 x 994.072 / (100 x 0.2006) = 24.78 -> 24.7, within the
      budget (994.072 - 494) / 20.06 = 24.93; margin 494.0, fee 1.482; balance 992.59;
      bankruptcy 100 + 494 / 24.7 = 120, L = (494 + 2,470) / (24.7 x 1.0056) = 119.332.

    Bar 2 opens at 70 for A and 130 for B (30 % gaps, past the stops and the liquidation prices): both
    are liquidated at their bankruptcy prices; A's pnl -499.928, B's -495.482, the account keeps
    992.59 - 988 = 4.59 USDT. With the stops filled at the gap opens (no margin cap) A alone would
    lose 98.8 x 30 = 2,964 USDT and the account would end near -2,722 USDT."""
    a = AccountConfig(capital=1000.0, leverage=20, slippage=0.0, sizing="equity", equity_fraction=0.5,
                      stop_loss=0.01, take_profit=0.02, **LIMITS_OFF)
    b = AccountConfig(capital=1000.0, leverage=5, slippage=0.0, sizing="equity", equity_fraction=0.5,
                      stop_loss=0.01, take_profit=0.02, **LIMITS_OFF)
    markets = {"A": _market(_tape(70.0)), "B": _market(_tape(130.0))}
    signals = {"A": np.array([1, 0, 0, 0], dtype=np.int8), "B": np.array([-1, 0, 0, 0], dtype=np.int8)}
    budget = PortfolioBudget(max_positions=0)
    r = run_portfolio_backtest(markets, signals, {"A": a, "B": b}, budget)
    t = r.trades.set_index("symbol")
    assert list(t.exit_reason) == ["liquidation", "liquidation"] and list(t.exit_bar) == [2, 2]
    assert (t.loc["A", "side"], t.loc["A", "qty"], t.loc["B", "side"], t.loc["B", "qty"]) == (1, 98.8, -1, 24.7)
    assert t.loc["A", "margin"] == pytest.approx(494.0, abs=1e-9) and t.loc["B", "margin"] == pytest.approx(494.0, abs=1e-9)
    assert t.loc["A", "liquidation_price"] == pytest.approx(95.535, abs=5e-4)
    assert t.loc["B", "liquidation_price"] == pytest.approx(119.332, abs=5e-4)
    assert t.loc["A", "exit_price"] == pytest.approx(95.0, abs=1e-9)
    assert t.loc["B", "exit_price"] == pytest.approx(120.0, abs=1e-9)
    assert t.loc["A", "pnl"] == pytest.approx(-499.928, abs=1e-9)
    assert t.loc["B", "pnl"] == pytest.approx(-495.482, abs=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(4.59, abs=1e-9) and r.equity.min() >= 0.0

    # the portfolio paper exchange, candle by candle: the same fills and the same account
    ex = PortfolioExchange(["A", "B"], {"A": a, "B": b}, budget, "5m")
    for i, time in enumerate(markets["A"].timestamps):
        ex.on_candles(time, {s: (m.open[i], m.high[i], m.low[i], m.close[i], m.atr[i]) for s, m in markets.items()})
        for s in ("A", "B"):
            ex.set_signal(s, int(signals[s][i]))
        assert ex.equity >= 0.0
    ex.close_all()
    pd.testing.assert_frame_equal(ex.result().trades, r.trades)
    assert ex.equity == pytest.approx(4.59, abs=1e-9)


def test_the_margin_budget_never_rounds_a_size_up_past_the_available_balance():
    """The budget's lot rounding (floor with a 1e-9 tolerance) must not give a position more margin than
    the balance left for it. Capital 49.9999999975 USDT, 20x, no fee or slippage, lot 1, sizing
    "equity" with fraction 0.7, both long at 100 (margin 5 USDT per lot):

    * A: 0.7 x 49.9999999975 / 5 = 6.99999999965 lots, which the tolerance floors to 7: margin 35,
      still within the whole balance (the sizing's own check);
    * B: the budget leaves 49.9999999975 - 35 = 14.9999999975 USDT = 2.9999999995 lots, which the
      tolerance floors to 3: margin 15 > 14.9999999975. The size must drop to 2 lots (margin 10).

    Bar 2 gaps both to 70 (past their liquidation prices): A loses 35, B 10, and the account keeps
    4.9999999975 USDT. Before the fix B held 3 lots and the account ended at -2.5e-9 USDT."""
    cfg = AccountConfig(capital=49.9999999975, leverage=20, taker_fee=0.0, slippage=0.0, sizing="equity",
                        equity_fraction=0.7, stop_loss=0.01, take_profit=0.02, lot_size=1.0, min_qty=0.0,
                        min_notional=0.0, **LIMITS_OFF)
    sig = np.array([1, 0, 0, 0], dtype=np.int8)
    r = run_portfolio_backtest({"A": _market(_tape(70.0)), "B": _market(_tape(70.0))}, {"A": sig, "B": sig},
                               {"A": cfg, "B": cfg}, PortfolioBudget(max_positions=0))
    t = r.trades.set_index("symbol")
    assert (t.loc["A", "qty"], t.loc["B", "qty"]) == (7.0, 2.0)
    assert list(t.exit_reason) == ["liquidation", "liquidation"]
    assert r.equity.iloc[-1] == pytest.approx(4.9999999975, abs=1e-12)
    assert r.equity.min() >= 0.0


def test_a_reversal_sizes_its_entry_from_the_balance_after_its_losing_exit():
    """The margin budget is what the balance leaves AFTER this symbol's own exit at the same open.
    Capital 1,000 USDT, 20x, no fee, slippage or stops, sizing "equity" with fraction 0.5:

    * bar 1 (open 100): B goes short, qty 0.5 x 1000 / (100 x 0.05) = 100, margin 500;
    * bar 2: A goes long at 100 (budget 1000 - 500 = 500): qty 100, margin 500; then B reverses at its
      open 102: the short loses 100 x 2 = 200 (balance 800), and the long may take 800 - 500 (A's
      margin) = 300 USDT: 300 / (102 x 0.05) = 58.82 -> 58.8 lots, margin 299.88 (its own sizing,
      0.5 x 800 / 5.1 = 78.4 lots, margin 399.84, is more than the balance leaves);
    * bar 3 gaps both to 70, past their liquidation prices (A 95.477, B 97.387): A loses 500, B 299.88.

    The account keeps 800 - 500 - 299.88 = 0.12 USDT. Before the fix the budget was set before B's
    exit (500 USDT): B took 78.4 lots and the account ended at -99.84 USDT."""
    cfg = AccountConfig(capital=1000.0, leverage=20, taker_fee=0.0, slippage=0.0, sizing="equity",
                        equity_fraction=0.5, stop_loss=0.0, take_profit=0.0, **LIMITS_OFF)
    flat, gap = (100.0,) * 4, (70.0,) * 4
    markets = {"A": _market([flat, flat, flat, gap]), "B": _market([flat, flat, (102.0,) * 4, gap])}
    signals = {"A": np.array([0, 1, 0, 0], dtype=np.int8), "B": np.array([-1, 1, 0, 0], dtype=np.int8)}
    r = run_portfolio_backtest(markets, signals, {"A": cfg, "B": cfg}, PortfolioBudget(max_positions=0))
    t = r.trades
    assert list(zip(t.symbol, t.side, t.qty, t.exit_reason)) == [
        ("B", -1, 100.0, "signal"), ("A", 1, 100.0, "liquidation"), ("B", 1, 58.8, "liquidation")]
    assert list(t.pnl) == [pytest.approx(-200.0, abs=1e-9), pytest.approx(-500.0, abs=1e-9),
                           pytest.approx(-299.88, abs=1e-9)]
    assert t.liquidation_price.iloc[1] == pytest.approx(95.477387, abs=5e-7)
    assert t.liquidation_price.iloc[2] == pytest.approx(97.386935, abs=5e-7)
    assert r.equity.iloc[-1] == pytest.approx(0.12, abs=1e-9) and r.equity.min() >= 0.0


# ---- property: no random portfolio drives the account's equity below zero -------------------------
_symbol_cfg = st.fixed_dictionaries({
    "leverage": st.one_of(st.sampled_from([1.0, 20.0, 50.0, MAX_LEVERAGE]), st.floats(1.0, MAX_LEVERAGE)),
    "adaptive_leverage": st.booleans(),
    "leverage_target_atr": st.sampled_from([0.001, 0.01]),
    "sizing": st.sampled_from(["fixed_fraction", "atr", "equity"]),
    "risk": st.floats(0.001, 1.0),
    "equity_fraction": st.floats(0.05, 1.0),
    "stop_mode": st.sampled_from(["percent", "atr", "levels"]),
    "stop_loss": st.one_of(st.just(0.0), st.floats(0.001, 0.6)),
    "take_profit": st.one_of(st.just(0.0), st.floats(0.001, 1.0)),
    "trailing_stop": st.sampled_from([0.0, 0.005, 0.1]),
    "taker_fee": st.sampled_from([0.0, 0.0006, 0.01]),
    "slippage": st.sampled_from([0.0, 0.005, 0.05]),
    "limit_offset": st.sampled_from([0.0, 0.0, 0.002]),
    "limit_fallback": st.booleans(),
    "lot_size": st.sampled_from([0.001, 0.1, 1.0]),
    "min_notional": st.sampled_from([0.0, 5.0]),
    "levels_lookback": st.sampled_from([4, 24]),
    "min_risk_reward": st.sampled_from([0.5, 1.5]),
})
_budget = st.builds(PortfolioBudget, max_positions=st.integers(0, 3),
                    max_total_margin=st.sampled_from([0.0, 0.5, 1.0]),
                    max_symbol_margin=st.sampled_from([0.0, 0.3, 1.0]),
                    corr_threshold=st.sampled_from([0.0, 0.5]), corr_window=st.sampled_from([8, 24]))
_regime = st.fixed_dictionaries({
    "gap_p": st.sampled_from([0.002, 0.01, 0.05]),
    "gap_max": st.sampled_from([0.05, 0.3, 0.9]),
    "wick": st.sampled_from([0.0005, 0.005, 0.05]),
    "vol": st.sampled_from([0.0005, 0.002, 0.01]),
    "funding_scale": st.sampled_from([0.0, 0.001, 0.05, 5.0]),
    "signal_p": st.sampled_from([0.05, 0.3]),
})
PORTFOLIOS = 1500


def test_portfolio_equity_never_below_zero_on_random_candle_paths():
    """PORTFOLIOS random accounts of 2-3 symbols (each its own random candles, settings and signals)
    on one balance: the account's equity >= 0 at every close, the balance >= 0 at the end (positions
    closed), and no trade loses more than its initial margin + entry fee."""
    seen = {"books": 0, "trades": 0, "liquidations": 0}

    @settings(max_examples=PORTFOLIOS, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cfgs=st.lists(_symbol_cfg, min_size=2, max_size=3), budget=_budget, regime=_regime,
           seed=st.integers(0, 2**32 - 1))
    def check(cfgs, budget, regime, seed):
        rng = np.random.default_rng(seed)
        symbols = [f"S{k}" for k in range(len(cfgs))]
        configs = {s: AccountConfig(capital=1000.0, **LIMITS_OFF, **kw) for s, kw in zip(symbols, cfgs)}
        n = BARS_PER_PATH
        o, h, lo, c, rate, mark, *_ = _paths(rng, len(symbols), regime["gap_p"], regime["gap_max"], regime["wick"],
                                             regime["vol"], regime["funding_scale"])
        sig = np.where(rng.random(o.shape) < regime["signal_p"], rng.choice([-1, 1], o.shape), 0).astype(np.int8)
        size = rng.choice([0.25, 1.0, 1.0], o.shape)
        book = PortfolioBook(symbols, configs, budget, capacity=n)
        book.ts[:n] = 1_746_316_800_000 + 300_000 * np.arange(n)
        book.o[:, :n], book.h[:, :n], book.lo[:, :n], book.c[:, :n] = o, h, lo, c
        book.rate[:, :n], book.fmark[:, :n] = rate, mark
        book.signal[:, :n], book.size[:, :n] = sig, size
        for k in range(len(symbols)):
            book.atr[k, :n] = talib.ATR(h[k], lo[k], c[k], timeperiod=14)
        book.run(0, n)
        book.close_all()
        tag = f"seed {seed}"
        assert (book.pequity[:n] >= 0.0).all(), f"{tag}: equity {book.pequity[:n].min()} < 0"
        assert book.pstate[PK.PS_BALANCE] >= 0.0, f"{tag}: balance {book.pstate[PK.PS_BALANCE]} < 0"
        for k in range(len(symbols)):
            rows = book.trades_buf[k, : int(book.state[k, K.S_NTRADES])]
            if len(rows):
                loss = -rows[:, K.T_PNL]
                cap = rows[:, K.T_MARGIN] + rows[:, K.T_ENTRY_FEE]
                assert (loss <= cap + TOL * (rows[:, K.T_QTY] * rows[:, K.T_ENTRY_PRICE] + 1.0)).all(), tag
                seen["trades"] += len(rows)
                seen["liquidations"] += int((rows[:, K.T_REASON] == K.X_LIQ).sum())
        seen["books"] += 1

    check()
    assert seen["books"] == PORTFOLIOS
    # not vacuous: the accounts trade and liquidate a lot
    assert seen["trades"] > 5 * PORTFOLIOS and seen["liquidations"] > PORTFOLIOS // 5, seen
