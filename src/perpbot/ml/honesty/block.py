"""The "honesty" block of a backtest or optimisation report: every statistic against overfitting, one object.

:func:`honesty_block` takes what the backtester already has (the equity curve or daily
returns, the trades, the trading and model metrics, the baselines' metrics) plus what an
optimisation adds (number of trials, the variance of their Sharpe ratios, the PBO, the
inner hold-out's return) and returns a :class:`HonestyReport`: the verdict, the seed-target
table, PSR/DSR, bootstrap intervals, the trade Monte Carlo and the binomial test of the
confident calls. ``HonestyReport.to_json()`` is what gets saved beside a model;
:mod:`perpbot.ml.honesty.render` turns it into tables (terminal and HTML).

Units: Sharpe ratios in the report are ANNUALISED (daily Sharpe x sqrt(365)) unless the
key says ``_daily``; returns, drawdowns, win rate, precision are fractions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from perpbot.ml.honesty.binomial import PrecisionTest, precision_test_from_metrics
from perpbot.ml.honesty.bootstrap import Interval, returns_bootstrap, trades_bootstrap
from perpbot.ml.honesty.montecarlo import TradeMonteCarlo, trade_monte_carlo, trade_returns
from perpbot.ml.honesty.pbo import PBOResult
from perpbot.ml.honesty.sharpe import (deflated_sharpe_ratio, expected_max_sharpe, probabilistic_sharpe_ratio,
                                       sharpe_stats)
from perpbot.ml.honesty.targets import TargetRow, seed_targets
from perpbot.ml.honesty.verdict import Verdict, json_safe, judge

__all__ = ["HonestyReport", "honesty_block"]

MIN_DAYS_BOOTSTRAP = 10
MIN_TRADES_BOOTSTRAP = 5


@dataclass
class HonestyReport:
    """Everything :func:`honesty_block` computed (None / NaN where the data were too few).

    ``sharpe``: dict with sharpe (annualised), sharpe_daily, n_days, skew, kurtosis
    (non-excess), psr (P[true Sharpe > 0]), dsr, expected_max_sharpe (annualised) and
    expected_max_sharpe_daily, n_trials, trials_sharpe_variance (annualised, None if unknown).
    ``bootstrap``: statistic name ("sharpe", "max_drawdown", "profit_factor") -> Interval.
    ``pbo``: :meth:`PBOResult.summary` or None. ``notes``: why something was skipped.
    """

    strategy: str
    verdict: Verdict
    targets: list[TargetRow]
    sharpe: dict
    bootstrap: dict[str, Interval] = field(default_factory=dict)
    monte_carlo: TradeMonteCarlo | None = None
    precision_test: PrecisionTest | None = None
    pbo: dict | None = None
    holdout_return: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (NaN/inf -> None)."""
        def clean(d: dict) -> dict:
            return {k: (clean(v) if isinstance(v, dict) else json_safe(v)) for k, v in d.items()}

        return {
            "strategy": self.strategy,
            "verdict": self.verdict.to_dict(),
            "targets": [clean(r.to_dict()) for r in self.targets],
            "sharpe": clean(self.sharpe),
            "bootstrap": {k: clean(v.to_dict()) for k, v in self.bootstrap.items()},
            "monte_carlo": clean(self.monte_carlo.to_dict()) if self.monte_carlo else None,
            "precision_test": clean(self.precision_test.to_dict()) if self.precision_test else None,
            "pbo": clean(self.pbo) if self.pbo else None,
            "holdout_return": json_safe(self.holdout_return),
            "notes": list(self.notes),
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)


def _sharpe_block(rets: np.ndarray, n_trials: int, trials_var_annual: float | None, ppy: float,
                  notes: list[str]) -> dict:
    nan = math.nan
    out = {"sharpe": nan, "sharpe_daily": nan, "n_days": int(rets.size), "skew": nan, "kurtosis": nan, "psr": nan,
           "dsr": nan, "expected_max_sharpe": nan, "expected_max_sharpe_daily": nan, "n_trials": int(n_trials),
           "trials_sharpe_variance": trials_var_annual}
    if rets.size < 3:
        notes.append(f"Sharpe statistics skipped: {rets.size} daily returns (need 3)")
        return out
    st = sharpe_stats(rets)
    if not math.isfinite(st.sharpe):
        notes.append("Sharpe statistics undefined: the daily returns do not vary")
        return out
    out.update(sharpe=st.sharpe * math.sqrt(ppy), sharpe_daily=st.sharpe, skew=st.skew, kurtosis=st.kurtosis)
    try:
        out["psr"] = probabilistic_sharpe_ratio(st.sharpe, st.n_obs, st.skew, st.kurtosis)
    except ValueError as exc:
        notes.append(f"PSR undefined: {exc}")
        return out
    if n_trials > 1 and trials_var_annual is None:
        notes.append(f"DSR not computed: the variance of the {n_trials} trials' Sharpe ratios is unknown")
        return out
    var_daily = (trials_var_annual or 0.0) / ppy
    sr0 = expected_max_sharpe(n_trials, var_daily)
    out.update(expected_max_sharpe_daily=sr0, expected_max_sharpe=sr0 * math.sqrt(ppy),
               dsr=deflated_sharpe_ratio(st.sharpe, st.n_obs, st.skew, st.kurtosis, n_trials=n_trials,
                                         sharpe_variance=var_daily))
    if n_trials == 1:
        notes.append("one trial: the DSR equals the PSR against 0 (no selection among configurations to deflate)")
    return out


def honesty_block(
    *,
    trades: pd.DataFrame,
    initial_capital: float,
    equity: pd.Series | None = None,
    daily_returns=None,
    strategy: str = "ai",
    strategy_metrics: dict | None = None,
    model_metrics: dict | None = None,
    baseline_metrics: dict[str, dict] | None = None,
    n_trials: int = 1,
    trials_sharpe_variance: float | None = None,
    pbo: PBOResult | None = None,
    holdout_return: float | None = None,
    periods_per_year: float = 365.0,
    reps: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> HonestyReport:
    """Build the honesty block of one strategy's run.

    Args:
        trades: the run's trades (``TRADE_COLUMNS``; uses ``pnl``, net USDT, in exit order).
        initial_capital: USDT at the start (> 0).
        equity: equity curve (USDT, tz-aware UTC bar-close index) -> daily returns by
            :func:`perpbot.ml.trading_metrics.daily_returns`; or give ``daily_returns``
            ((d,) fractions) directly. One of the two is required.
        strategy: name shown in the report.
        strategy_metrics: the run's ``trading_metrics`` dict (computed from ``equity`` when None).
        model_metrics: the model's ``model_metrics`` dict (accuracy targets, binomial test) or None.
        baseline_metrics: baseline name -> ``trading_metrics`` dict (references beside the targets).
        n_trials: configurations tried to arrive at this one (1 for a plain backtest).
        trials_sharpe_variance: variance of the trials' ANNUALISED Sharpe ratios (needed
            when ``n_trials > 1``; converted to daily by ``/ periods_per_year``).
        pbo: the optimisation's :class:`PBOResult`, or None.
        holdout_return: inner hold-out total return after costs (fraction), or None.
        periods_per_year: 365 for daily crypto returns.
        reps, level, seed: bootstrap / Monte Carlo resamples, interval coverage, seed.

    Returns:
        :class:`HonestyReport`.

    Raises:
        ValueError: neither or both of ``equity`` / ``daily_returns``; no trades ``pnl``
        column; ``n_trials < 1``; bad capital; inputs the underlying functions refuse.
    """
    from perpbot.ml.trading_metrics import daily_returns as _daily, trading_metrics

    if (equity is None) == (daily_returns is None):
        raise ValueError("give exactly one of equity or daily_returns")
    if not (isinstance(n_trials, (int, np.integer)) and n_trials >= 1):
        raise ValueError(f"n_trials: need an integer >= 1, got {n_trials!r}")
    if not isinstance(trades, pd.DataFrame) or (len(trades) and "pnl" not in trades.columns):
        raise ValueError("trades: expected a DataFrame with a 'pnl' column")
    if not (math.isfinite(initial_capital) and initial_capital > 0):
        raise ValueError(f"initial_capital: must be a finite number > 0, got {initial_capital}")
    if equity is not None:
        rets = _daily(equity, initial_capital)
        if strategy_metrics is None:
            strategy_metrics = trading_metrics(equity, trades, initial_capital)
    else:
        rets = np.asarray(daily_returns, dtype=np.float64)
        if rets.ndim != 1 or not np.isfinite(rets).all():
            raise ValueError("daily_returns: expected a 1-D array of finite fractions")
    strategy_metrics = strategy_metrics or {}
    notes: list[str] = []
    pnl = trades["pnl"].to_numpy(dtype=np.float64) if len(trades) else np.empty(0)

    sharpe = _sharpe_block(rets, int(n_trials), trials_sharpe_variance, periods_per_year, notes)
    boot: dict[str, Interval] = {}
    if rets.size >= MIN_DAYS_BOOTSTRAP:
        boot.update(returns_bootstrap(rets, periods_per_year=periods_per_year, level=level, reps=reps, seed=seed))
    else:
        notes.append(f"bootstrap of daily returns skipped: {rets.size} days (need {MIN_DAYS_BOOTSTRAP})")
    mc = None
    if pnl.size >= MIN_TRADES_BOOTSTRAP:
        boot.update(trades_bootstrap(pnl, level=level, reps=reps, seed=seed))
        mc = trade_monte_carlo(trade_returns(pnl, initial_capital), reps=reps, level=level, seed=seed)
    else:
        notes.append(f"profit factor bootstrap and trade Monte Carlo skipped: {pnl.size} trades "
                     f"(need {MIN_TRADES_BOOTSTRAP})")
    ptest = precision_test_from_metrics(model_metrics) if model_metrics else None
    if model_metrics and ptest is None:
        notes.append("binomial test skipped: the model made no confident call")
    count = int(len(trades))
    verdict = judge(trade_count=count, dsr=sharpe["dsr"], pbo=pbo.pbo if pbo is not None else None,
                    holdout_return=holdout_return, n_trials=int(n_trials))
    return HonestyReport(
        strategy=strategy, verdict=verdict,
        targets=seed_targets(strategy_metrics, model_metrics, baseline_metrics),
        sharpe=sharpe, bootstrap=boot, monte_carlo=mc, precision_test=ptest,
        pbo=pbo.summary() if pbo is not None else None, holdout_return=holdout_return, notes=notes,
    )
