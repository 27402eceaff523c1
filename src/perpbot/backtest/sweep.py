"""Parameter sweeps of rule strategies: thousands of full-accounting backtests, metrics only.

A sweep needs each parameter set's metrics, not its result frames: :func:`sweep` runs the same
compiled loop as every backtest (:func:`perpbot.sim.engine.run_kernel`: fees, slippage, funding,
isolated margin and liquidation, intrabar stops, sizing, risk limits) into buffers allocated once,
and computes the headline metrics straight from the equity array — total return, max drawdown,
Sharpe ratio of daily returns (the definitions of :func:`perpbot.ml.trading_metrics.trading_metrics`)
and the trade count. The few best sets are then backtested in full (:func:`perpbot.backtest.runner.simulate`)
for their frames and reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from perpbot.sim import kernel as K
from perpbot.sim.config import AccountConfig
from perpbot.sim.engine import MarketArrays, allocate_outputs, run_kernel


def day_end_index(arrays: MarketArrays) -> np.ndarray:
    """For each UTC day from the first to the last bar close, the index of the last bar whose close
    is at or before that day's end (00:00 UTC of the next day): int64 (days,). Days without a close
    repeat the previous index (equity carried over), as :func:`~perpbot.ml.trading_metrics.daily_returns`."""
    closes = pd.DatetimeIndex(arrays.timestamps) + pd.Timedelta(milliseconds=arrays.bar_ms)
    ends = pd.date_range(closes[0].ceil("D"), closes[-1].ceil("D"), freq="1D")
    return np.searchsorted(closes.asi8, ends.asi8, side="right") - 1


def equity_metrics(equity: np.ndarray, day_idx: np.ndarray, initial_capital: float) -> tuple[float, float, float]:
    """(total return, max drawdown <= 0, annualised Sharpe of daily returns) of an equity array (USDT)."""
    total = float(equity[-1] / initial_capital - 1.0)
    peak = np.maximum(np.maximum.accumulate(equity), initial_capital)
    max_dd = min(float(np.min(equity / peak - 1.0)), 0.0)
    daily = np.concatenate(([initial_capital], equity[day_idx]))
    rets = daily[1:] / daily[:-1] - 1.0
    std = float(rets.std(ddof=1)) if rets.size > 1 else 0.0
    sharpe = float(rets.mean()) / std * math.sqrt(365.0) if std > 0 else math.nan
    return total, max_dd, sharpe


def sweep(arrays: MarketArrays, param_sets: Iterable[dict], signal_for: Callable[[dict], np.ndarray],
          config_for: Callable[[dict], AccountConfig]) -> pd.DataFrame:
    """Backtest every parameter set (full accounting, closed at the end) and return one row per set:
    its parameters, ``total_return``, ``max_drawdown``, ``sharpe`` and ``trade_count``.

    Args:
        arrays: the market (:func:`perpbot.backtest.runner.market_arrays`).
        param_sets: dicts of parameters.
        signal_for: params -> int8 signal array (n,) (e.g. EMA periods -> crosses).
        config_for: params -> :class:`~perpbot.sim.config.AccountConfig` (e.g. stop-loss / take-profit).
    """
    n = len(arrays)
    outs = allocate_outputs(n)
    day_idx = day_end_index(arrays)
    rows = []
    for params in param_sets:
        cfg = config_for(params)
        signal = np.ascontiguousarray(signal_for(params), dtype=np.int8)
        state = K.new_state(cfg.capital)
        run_kernel(arrays, signal, cfg.params(), cfg.tier_arrays(), state, outs, 0, n)
        K.close_at_end(n - 1, arrays.close, cfg.params(), state, outs[0], outs[1], outs[2])
        total, max_dd, sharpe = equity_metrics(outs[0][:n], day_idx, cfg.capital)
        rows.append({**params, "total_return": total, "max_drawdown": max_dd, "sharpe": sharpe,
                     "trade_count": int(state[K.S_NTRADES])})
    return pd.DataFrame(rows)
