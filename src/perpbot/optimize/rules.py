"""Optimise a rule strategy's parameters (:mod:`perpbot.strategy.plugin`) honestly.

Optuna's TPE sampler (seeded) searches the strategy's parameter ranges; each trial backtests the
strategy with those parameters on the **search period** (the candles before the hold-out) and scores
the annualised Sharpe ratio of its daily returns after fees, slippage and funding. The latest
``holdout`` share of the candles is never seen by a trial: the chosen parameters are backtested on it
once, on a fresh account. Every trial counts (``n_trials`` for the deflated Sharpe ratio of
:mod:`perpbot.ml.honesty`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class RuleSearch:
    """Result of :func:`optimize_rule`: the chosen parameters, the metrics of their backtest on the
    search period and on the hold-out (scored once), the hold-out's first candle and the trial count."""

    best_params: dict
    search_metrics: dict
    holdout_metrics: dict
    holdout_start: pd.Timestamp
    n_trials: int


def _backtest(settings, market, ref: str, params: dict):
    from perpbot.backtest.runner import market_arrays, simulate
    from perpbot.sim.config import AccountConfig
    from perpbot.strategy.plugin import load_strategy

    signal = load_strategy(ref, **params)(market.candles)
    return simulate(ref, signal, market_arrays(settings, market), AccountConfig.for_strategy(settings, None))


def optimize_rule(settings, market, ref: str, *, trials: int = 50, holdout: float = 0.2, seed: int = 0) -> RuleSearch:
    """Search ``ref``'s parameters on the first ``1 - holdout`` of ``market`` (see the module docstring).

    Raises ValueError for ``trials`` < 1, ``holdout`` outside (0, 0.9) or a strategy without parameters.
    """
    import optuna

    from perpbot.strategy.plugin import strategy_class

    if trials < 1 or not 0.0 < holdout < 0.9:
        raise ValueError(f"trials must be >= 1 and holdout in (0, 0.9); got {trials}, {holdout}")
    cls = strategy_class(ref)
    if not cls.parameters:
        raise ValueError(f"{cls.name} has no parameters to optimise")
    n = len(market.candles)
    cut = int(n * (1.0 - holdout))
    search = market.slice(0, cut)
    warm = max(0, cut - int(settings.warmup_bars))
    hold = market.slice(warm)  # the warm-up candles before the hold-out feed the indicators only

    def objective(trial) -> float:
        params = {k: (trial.suggest_int(k, int(p.low), int(p.high)) if p.is_int
                      else trial.suggest_float(k, float(p.low), float(p.high))) for k, p in cls.parameters.items()}
        sharpe = _backtest(settings, search, ref, params).metrics.get("sharpe")
        return float(sharpe) if sharpe is not None and np.isfinite(sharpe) else -10.0

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=int(trials))
    best = dict(study.best_params)
    search_run = _backtest(settings, search, ref, best)
    hold_settings = settings.model_copy(update={"warmup_bars": cut - warm})
    hold_run = _backtest(hold_settings, hold, ref, best)
    return RuleSearch(best_params=best, search_metrics=search_run.metrics, holdout_metrics=hold_run.metrics,
                      holdout_start=market.candles["timestamp"].iloc[cut], n_trials=len(study.trials))
