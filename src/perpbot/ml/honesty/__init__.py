"""Statistics against overfitting: is a backtest's edge evidence, or luck and selection?

- :mod:`.sharpe`: Probabilistic and Deflated Sharpe Ratio, expected maximum Sharpe ratio of
  N trials (Bailey & López de Prado, 2012 and 2014).
- :mod:`.pbo`: Probability of Backtest Overfitting by combinatorially symmetric
  cross-validation (Bailey, Borwein, López de Prado & Zhu, 2017).
- :mod:`.bootstrap`: stationary block bootstrap intervals (``arch``) for Sharpe ratio,
  max drawdown and profit factor.
- :mod:`.montecarlo`: reshuffled / resampled trade sequences.
- :mod:`.binomial`: binomial test of the confident calls' precision against the base rate.
- :mod:`.targets`: the seed targets as a pass/fail table beside base rates and baselines.
- :mod:`.verdict`: "edge confirmed" / "no edge shown" / "too few trades to judge".
- :mod:`.block`: all of it for one backtest run (:func:`honesty_block`); :mod:`.render`: tables.
- :mod:`.saved`: the verdict saved beside a model (``<model>.verdict.json``), read by the real-money gate.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SharpeStats": "sharpe", "deflated_sharpe_ratio": "sharpe", "expected_max_sharpe": "sharpe",
    "probabilistic_sharpe_ratio": "sharpe", "sharpe_stats": "sharpe",
    "PBOResult": "pbo", "probability_of_backtest_overfitting": "pbo",
    "Interval": "bootstrap", "returns_bootstrap": "bootstrap", "trades_bootstrap": "bootstrap",
    "TradeMonteCarlo": "montecarlo", "trade_monte_carlo": "montecarlo",
    "PrecisionTest": "binomial", "precision_binomial_test": "binomial", "precision_test_from_metrics": "binomial",
    "SEED_TARGETS": "targets", "TargetRow": "targets", "seed_targets": "targets",
    "Verdict": "verdict", "judge": "verdict", "EDGE_CONFIRMED": "verdict", "NO_EDGE": "verdict",
    "TOO_FEW_TRADES": "verdict",
    "HonestyReport": "block", "honesty_block": "block",
    "honesty_rich": "render", "honesty_tables": "render", "honesty_text": "render",
    "load_verdict": "saved", "model_verdict": "saved", "save_verdict": "saved", "verdict_path": "saved",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'perpbot.ml.honesty' has no attribute {name!r}")
    return getattr(importlib.import_module(f"perpbot.ml.honesty.{module}"), name)
