"""Property test of the isolated-margin cap: no sequence of candles drives equity below zero.

Random candle paths (numpy, drawn inside hypothesis examples) with gaps, huge wicks and extreme
funding rates, random leverage up to the venue maximum (fixed or adaptive per trade), every sizing
and stop mode (support / resistance levels too), trailing stops, slippage, and post-only limit
entries with a maker fee from a rebate to above the taker fee: equity is >= 0 at every bar and
no trade loses more than its initial margin + entry fee (the convention of
``perpbot.sim.accounting``; worked examples in ``test_margin_cap.py``). At least 10,000 paths
per run through the compiled loop, and a few candle by candle through the paper exchange.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpbot.data.validate import MAX_ABS_FUNDING_RATE
from perpbot.sim.config import AccountConfig
from perpbot.sim.engine import MarketArrays, allocate_outputs, run_backtest
from perpbot.sim import kernel as K
from perpbot.exchange.simulated import SimulatedExchange

BARS_PER_PATH = 96
SUB = 5  # 1m candles per 5m bar
PATHS_PER_EXAMPLE = 50
EXAMPLES = 200
MAX_LEVERAGE = 125.0  # Bitget's highest leverage on any USDT-M perpetual (the config allows 1..125)
TOL = 1e-9  # relative float tolerance for sums of several terms (pnl); equity is checked exactly


def _paths(rng: np.random.Generator, n_paths: int, gap_p: float, gap_max: float, wick: float,
           vol: float, funding_scale: float):
    """Random OHLC paths (n_paths, BARS_PER_PATH) built from 1m candles (n_paths, BARS_PER_PATH*SUB).

    Prices: a geometric random walk from 100 with per-1m volatility ``vol``; each 1m open gaps
    from the previous close with probability ``gap_p`` by up to +/-``gap_max`` (fraction, log
    scale); wicks reach |N(0, wick)| (fraction) beyond max/min(open, close), 10x that on 2 % of
    the 1m candles; prices stay > 0 (lows shrink geometrically), as data validation requires.
    Funding events every 8 bars at a random mark near the open, rates up to +/-``funding_scale``.
    """
    n1 = BARS_PER_PATH * SUB
    ret = rng.normal(0.0, vol, (n_paths, n1))
    jump = np.where(rng.random((n_paths, n1)) < gap_p, rng.uniform(-gap_max, gap_max, (n_paths, n1)), 0.0)
    log_c = np.log(100.0) + np.cumsum(ret + jump, axis=1)
    log_o = np.concatenate([np.full((n_paths, 1), np.log(100.0)), log_c[:, :-1]], axis=1) + jump
    o1, c1 = np.exp(log_o), np.exp(log_c)
    big = np.where(rng.random((n_paths, n1)) < 0.02, 10.0, 1.0)
    up = np.abs(rng.normal(0.0, wick, (n_paths, n1))) * big
    dn = np.abs(rng.normal(0.0, wick, (n_paths, n1))) * big
    h1 = np.maximum(o1, c1) * (1.0 + up)
    l1 = np.minimum(o1, c1) * np.exp(-dn)  # stays > 0
    shape = (n_paths, BARS_PER_PATH, SUB)
    o = o1.reshape(shape)[:, :, 0]
    c = c1.reshape(shape)[:, :, -1]
    h = h1.reshape(shape).max(axis=2)
    lo = l1.reshape(shape).min(axis=2)
    rate = np.zeros((n_paths, BARS_PER_PATH))
    rate[:, ::8] = rng.uniform(-funding_scale, funding_scale, (n_paths, BARS_PER_PATH // 8))
    mark = o * np.exp(rng.normal(0.0, 0.01, o.shape))
    return o, h, lo, c, rate, mark, o1, h1, l1


_config = st.fixed_dictionaries({
    "leverage": st.one_of(st.sampled_from([1.0, 5.0, 20.0, 50.0, 100.0, MAX_LEVERAGE]),
                          st.floats(1.0, MAX_LEVERAGE)),
    "sizing": st.sampled_from(["fixed_fraction", "atr", "equity"]),
    "risk": st.floats(0.001, 1.0),
    "equity_fraction": st.floats(0.05, 1.0),
    "sizing_atr_mult": st.floats(0.2, 5.0),
    "adaptive_leverage": st.booleans(),  # leverage per trade (<= the leverage drawn above)
    "leverage_target_atr": st.sampled_from([0.001, 0.01]),
    "stop_mode": st.sampled_from(["percent", "atr", "levels"]),
    "levels_lookback": st.sampled_from([4, 24]),
    "min_risk_reward": st.sampled_from([0.5, 1.5]),
    "stop_loss": st.one_of(st.just(0.0), st.floats(0.001, 0.6)),
    "take_profit": st.one_of(st.just(0.0), st.floats(0.001, 1.0)),
    "trailing_stop": st.one_of(st.just(0.0), st.floats(0.0005, 0.3)),
    "taker_fee": st.sampled_from([0.0, 0.0002, 0.0006, 0.01]),  # config allows 0 .. 1 %
    "slippage": st.sampled_from([0.0, 0.0002, 0.005, 0.02, 0.05]),  # config allows 0 .. 5 %
    # post-only limit entries (maker fee; the settings allow it from a rebate up to above the taker fee)
    "limit_offset": st.sampled_from([0.0, 0.0, 0.002]),
    "limit_fallback": st.booleans(),
    "maker_fee": st.sampled_from([-0.0001, 0.0002, 0.01]),
    "max_daily_loss": st.sampled_from([1.0, 0.05]),
    "max_drawdown": st.sampled_from([1.0, 0.5]),
    "cooldown_bars": st.integers(0, 6),
    "lot_size": st.sampled_from([0.001, 0.1, 1.0]),
    "min_notional": st.sampled_from([0.0, 5.0]),
})
_market_regime = st.fixed_dictionaries({
    "gap_p": st.sampled_from([0.0, 0.002, 0.01, 0.05]),
    "gap_max": st.sampled_from([0.05, 0.3, 0.9]),
    "wick": st.sampled_from([0.0005, 0.005, 0.05]),
    "vol": st.sampled_from([0.0005, 0.002, 0.01]),
    "funding_scale": st.sampled_from([0.0, 0.001, 0.05, 5.0]),
    "signal_p": st.sampled_from([0.02, 0.1, 0.5]),
    "intrabar": st.booleans(),
})


def _check_account(equity, trades, state, leverage, tag):
    """The invariants: equity >= 0 at every bar and at the end; no trade loses more than its
    initial margin + entry fee (up to float rounding of the pnl sum)."""
    assert (equity >= 0.0).all(), f"{tag}: equity {equity.min()} < 0"
    assert state[K.S_BALANCE] >= 0.0, f"{tag}: balance {state[K.S_BALANCE]} < 0"
    if len(trades):
        loss = -trades[:, K.T_PNL]
        cap = trades[:, K.T_MARGIN] + trades[:, K.T_ENTRY_FEE]
        notional = trades[:, K.T_QTY] * trades[:, K.T_ENTRY_PRICE]
        assert (loss <= cap + TOL * (notional + 1.0)).all(), f"{tag}: a trade lost {loss.max()} > cap"
        # each trade's own leverage (adaptive: from volatility and the size scale) never above the setting
        assert (trades[:, K.T_LEV] >= 1.0).all() and (trades[:, K.T_LEV] <= leverage).all(), tag
        np.testing.assert_allclose(trades[:, K.T_MARGIN], notional / trades[:, K.T_LEV], rtol=1e-12)


def test_equity_never_below_zero_on_random_candle_paths():
    """At least 10,000 random candle paths (hypothesis draws settings and a seed; numpy draws
    PATHS_PER_EXAMPLE paths per example): gaps up to +/-90 % (log), huge wicks, funding rates up
    to +/-5 per event, leverage 1..125x (fixed or adaptive), every sizing and stop mode, trailing
    stops, slippage up to 5 %, limit entries (maker fee -0.01 % .. 1 %), with and without 1m
    candles resolving the bar; the position left open is closed at the end of data."""
    seen = {"paths": 0, "trades": 0, "liquidations": 0}
    tiers = AccountConfig().tier_arrays()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(cfg_kw=_config, regime=_market_regime, seed=st.integers(0, 2**32 - 1))
    def check(cfg_kw, regime, seed):
        cfg = AccountConfig(capital=1000.0, **cfg_kw)
        params = cfg.params()
        rng = np.random.default_rng(seed)
        o, h, lo, c, rate, mark, o1, h1, l1 = _paths(
            rng, PATHS_PER_EXAMPLE, regime["gap_p"], regime["gap_max"], regime["wick"], regime["vol"],
            regime["funding_scale"])
        sig = np.where(rng.random(o.shape) < regime["signal_p"], rng.choice([-1, 1], o.shape), 0).astype(np.int8)
        n = BARS_PER_PATH
        ts = (1_746_316_800_000 + 300_000 * np.arange(n)).astype(np.int64)  # 2025-05-04 00:00 UTC, 5m
        if regime["intrabar"]:
            m1_start = (np.arange(n) * SUB).astype(np.int64)
            m1_end = m1_start + SUB
        else:
            m1_start = m1_end = np.full(n, -1, dtype=np.int64)
        for p in range(PATHS_PER_EXAMPLE):
            hp, lp, cp = h[p].copy(), lo[p].copy(), c[p].copy()
            atr = talib.ATR(hp, lp, cp, timeperiod=14)
            state = K.new_state(cfg.capital)
            outs = allocate_outputs(n)
            equity, position, trades, events, fundings = outs
            K.run_bars(0, n, ts, o[p].copy(), hp, lp, cp, sig[p], atr, rate[p].copy(), mark[p].copy(),
                       m1_start, m1_end, o1[p].copy(), h1[p].copy(), l1[p].copy(), tiers[0], tiers[1],
                       params, state, equity, position, trades, events, fundings)
            K.close_at_end(n - 1, cp, params, state, equity, position, trades)
            rows = trades[: int(state[K.S_NTRADES])]
            _check_account(equity, rows, state, cfg.leverage, f"seed {seed} path {p}")
            seen["paths"] += 1
            seen["trades"] += len(rows)
            seen["liquidations"] += int((rows[:, K.T_REASON] == K.X_LIQ).sum())

    check()
    assert seen["paths"] >= 10_000
    # not vacuous: the paths trade and liquidate a lot
    assert seen["trades"] > 10_000 and seen["liquidations"] > 1_000


@settings(max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(leverage=st.floats(1.0, MAX_LEVERAGE), sizing=st.sampled_from(["fixed_fraction", "atr", "equity"]),
       slippage=st.sampled_from([0.0, 0.0002, 0.05]), trailing=st.sampled_from([0.0, 0.005]),
       seed=st.integers(0, 2**32 - 1))
def test_paper_exchange_keeps_equity_above_zero_and_equals_the_backtest(leverage, sizing, slippage, trailing, seed):
    """The same random gappy paths (with funding up to the largest rate data validation admits,
    +/-MAX_ABS_FUNDING_RATE per event) through the paper exchange, candle by candle: equity >= 0
    after every candle, every trade capped, and the result equal to the backtest of the same candles."""
    rng = np.random.default_rng(seed)
    o, h, lo, c, rate, mark, *_ = _paths(rng, 1, 0.05, 0.9, 0.05, 0.002, MAX_ABS_FUNDING_RATE)
    o, h, lo, c, rate = o[0], h[0], lo[0], c[0], rate[0]
    sig = np.where(rng.random(o.shape) < 0.2, rng.choice([-1, 1], o.shape), 0).astype(np.int8)
    cfg = AccountConfig(capital=1000.0, leverage=leverage, sizing=sizing, slippage=slippage, trailing_stop=trailing,
                    stop_loss=0.02, take_profit=0.05, risk=0.5, equity_fraction=1.0, cooldown_bars=0,
                    max_drawdown=1.0, max_daily_loss=1.0)
    times = pd.date_range("2025-05-04 00:00", periods=len(o), freq="5min", tz="UTC")
    funding = pd.DataFrame({"timestamp": times[rate != 0], "funding_rate": rate[rate != 0]})
    candles = pd.DataFrame({"timestamp": times, "open": o, "high": h, "low": lo, "close": c, "volume": 1.0})
    market = MarketArrays.build(candles, "5m", funding=funding)
    assert (market.funding_rate != 0).sum() == (rate != 0).sum()
    ex = SimulatedExchange(cfg, "5m", funding=funding)
    equities = []
    for k in range(len(o)):
        ex.on_candle(times[k], o[k], h[k], lo[k], c[k], market.atr[k])
        equities.append(ex.equity)
        ex.set_signal(int(sig[k]))
    ex.close_all()
    equities.append(ex.equity)
    paper = ex.result()
    _check_account(np.array(equities), ex.trades_buf[: int(ex.state[K.S_NTRADES])], ex.state, leverage, "paper")
    bt = run_backtest(market, sig, cfg)
    pd.testing.assert_frame_equal(paper.trades, bt.trades)
    np.testing.assert_array_equal(paper.equity.to_numpy(), bt.equity.to_numpy())
