"""Parameter sweeps (issue 13): metrics-only backtests give exactly the metrics of the full backtest
(total return, max drawdown, Sharpe ratio of daily returns, trade count) on real SOL candles."""

from __future__ import annotations

from dataclasses import replace
from itertools import product

import numpy as np
import pytest

from perpbot.backtest.runner import market_arrays, simulate
from perpbot.backtest.sweep import sweep
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.sim.config import AccountConfig
from perpbot.strategy.ema_cross import ema_cross_signals


def test_sweep_rows_equal_full_backtests(sol5m_path, sol_funding_path, sol_mark8h_path, tmp_path):
    s = load_settings(None, output_dir=tmp_path)
    market = load_market(sol5m_path, "5m", funding_file=sol_funding_path, mark_file=sol_mark8h_path).slice(0, 20_000)
    arrays = market_arrays(s, market)
    close = market.candles["close"].to_numpy(np.float64)
    base = AccountConfig.from_settings(s)
    sets = [{"fast": f, "slow": sl, "stop_loss": sl_pct} for f, sl, sl_pct in product((10, 20), (50, 100), (0.01, 0.02))]

    def signal_for(p):
        return ema_cross_signals(close, p["fast"], p["slow"])

    def config_for(p):
        return replace(base, stop_loss=p["stop_loss"], take_profit=2 * p["stop_loss"])

    rows = sweep(arrays, sets, signal_for, config_for)
    assert len(rows) == 8 and (rows["trade_count"] > 10).all()
    for p, row in zip(sets, rows.itertuples()):
        full = simulate("ema-cross", signal_for(p), arrays, config_for(p)).metrics
        assert row.trade_count == full["trade_count"]
        assert row.total_return == pytest.approx(full["total_return"], rel=1e-12, abs=1e-15)
        assert row.max_drawdown == pytest.approx(full["max_drawdown"], rel=1e-12, abs=1e-15)
        assert row.sharpe == pytest.approx(full["sharpe"], rel=1e-9)
