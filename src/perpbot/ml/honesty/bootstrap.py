"""Bootstrap confidence intervals for Sharpe ratio, max drawdown and profit factor.

Resampling is the stationary block bootstrap of Politis & Romano (1994), "The Stationary
Bootstrap", *JASA* 89(428), as implemented by ``arch.bootstrap.StationaryBootstrap``, with
the expected block length from ``arch.bootstrap.optimal_block_length`` (Politis & White,
2004, with the correction of Patton, Politis & White, 2009). Blocks keep the serial
dependence (volatility clustering, runs of wins/losses) that an iid bootstrap would break.

Intervals are percentile intervals (Efron): the empirical ``(1-level)/2`` and
``(1+level)/2`` quantiles of the bootstrap distribution (``numpy.quantile`` with the
``inverted_cdf`` rule, so an infinite profit factor in some resamples stays usable).
Resamples where a statistic is undefined (NaN, e.g. a Sharpe ratio of a resample with zero
variance) are left out and counted in ``n_undefined``.

Units: ``sharpe`` is ANNUALISED (per-period Sharpe x sqrt(periods_per_year), 365 for daily
crypto returns, as in :mod:`perpbot.ml.trading_metrics`); ``max_drawdown`` is a NEGATIVE
fraction of the running peak of the compounded returns (starting at 1.0); ``profit_factor``
is gross profit / gross loss of the trade PnLs (USDT), inf when no trade lost.
Every function is reproducible: the same ``seed`` gives the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from arch.bootstrap import StationaryBootstrap, optimal_block_length

__all__ = [
    "Interval",
    "block_size",
    "max_drawdown_of_returns",
    "profit_factor",
    "returns_bootstrap",
    "trades_bootstrap",
]


#: Fewer values than this: block length 1 (no reliable autocorrelation estimate).
MIN_BLOCK_ESTIMATE = 20


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile interval ``[low, high]`` at ``level``.

    ``n_boot``: resamples drawn; ``n_undefined``: resamples where the statistic was NaN;
    ``block_size``: expected block length of the stationary bootstrap (observations).
    """

    point: float
    low: float
    high: float
    level: float
    n_boot: int
    n_undefined: int
    block_size: float

    def to_dict(self) -> dict:
        return asdict(self)


def _as_1d(x, name: str, min_size: int) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
    if a.size < min_size:
        raise ValueError(f"{name}: need at least {min_size} values, got {a.size}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: non-finite value at position {int(np.argmax(~np.isfinite(a)))}")
    return a


def _check_common(level: float, reps: int) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    if not (isinstance(reps, (int, np.integer)) and reps >= 100):
        raise ValueError(f"reps: need an integer >= 100, got {reps!r}")


def block_size(x) -> float:
    """Expected block length for the stationary bootstrap of ``x`` (>= 1 observation).

    ``arch.bootstrap.optimal_block_length(x)["stationary"]``; 1.0 (an iid bootstrap) when
    ``x`` has fewer than ``MIN_BLOCK_ESTIMATE`` (20) values (too short to estimate the
    autocorrelations; arch's estimator fails below 8), zero variance (every resample of a
    constant series is the same) or the estimate is not finite.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.size < MIN_BLOCK_ESTIMATE or not np.ptp(a) > 0:
        return 1.0
    b = float(optimal_block_length(a)["stationary"].iloc[0])
    return max(1.0, b) if math.isfinite(b) else 1.0


def max_drawdown_of_returns(returns) -> float:
    """Max drawdown (a fraction <= 0) of the equity ``cumprod(1 + r)`` started at 1.0.

    The start value is the first peak, as in :func:`perpbot.ml.trading_metrics.trading_metrics`.
    """
    r = np.asarray(returns, dtype=np.float64)
    equity = np.cumprod(1.0 + r)
    peak = np.maximum(np.maximum.accumulate(equity), 1.0)
    return float(min(np.min(equity / peak - 1.0), 0.0)) if r.size else 0.0


def profit_factor(pnl) -> float:
    """Gross profit / gross loss of trade PnLs (USDT): inf with no losing trade, NaN with no trade or all zero."""
    p = np.asarray(pnl, dtype=np.float64)
    wins, losses = p[p > 0].sum(), -p[p < 0].sum()
    if losses > 0:
        return float(wins / losses)
    return math.inf if wins > 0 else math.nan


def _interval(point: float, dist: np.ndarray, level: float, reps: int, b: float) -> Interval:
    ok = ~np.isnan(dist)
    if not ok.any():
        return Interval(float(point), math.nan, math.nan, level, int(reps), int(reps), float(b))
    lo, hi = np.quantile(dist[ok], [(1.0 - level) / 2.0, (1.0 + level) / 2.0], method="inverted_cdf")
    return Interval(float(point), float(lo), float(hi), level, int(reps), int((~ok).sum()), float(b))


def _sharpe_annual(r: np.ndarray, scale: float) -> float:
    std = r.std(ddof=1)
    return float(r.mean() / std * scale) if std > 0 else math.nan


def returns_bootstrap(returns, *, periods_per_year: float = 365.0, level: float = 0.95, reps: int = 2000,
                      seed: int = 0) -> dict[str, Interval]:
    """Stationary block bootstrap intervals of the annualised Sharpe ratio and the max drawdown.

    Args:
        returns: (T,) simple returns per period as fractions, in time order (daily returns
            of the equity for a backtest; T >= 10).
        periods_per_year: annualisation of the Sharpe ratio (365 for daily crypto returns).
        level: coverage of the two-sided interval, in (0, 1).
        reps: number of bootstrap resamples (>= 100).
        seed: seed of the resampling (``numpy.random.default_rng(seed)``).

    Returns:
        ``{"sharpe": Interval, "max_drawdown": Interval}`` (annualised Sharpe; drawdown a
        negative fraction of the compounded returns, see :func:`max_drawdown_of_returns`).
        A constant series gives a degenerate drawdown interval (low = high = point) and a
        NaN Sharpe ratio with a NaN interval.

    Raises:
        ValueError: not 1-D, fewer than 10 values, non-finite values, bad level/reps,
        ``periods_per_year <= 0``.
    """
    r = _as_1d(returns, "returns", 10)
    _check_common(level, reps)
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year: must be > 0, got {periods_per_year}")
    scale = math.sqrt(periods_per_year)
    b = block_size(r)

    def stats_of(x: np.ndarray) -> np.ndarray:
        return np.array([_sharpe_annual(x, scale), max_drawdown_of_returns(x)])

    dist = StationaryBootstrap(b, r, seed=np.random.default_rng(seed)).apply(stats_of, reps)
    point = stats_of(r)
    return {"sharpe": _interval(point[0], dist[:, 0], level, reps, b),
            "max_drawdown": _interval(point[1], dist[:, 1], level, reps, b)}


def trades_bootstrap(pnl, *, level: float = 0.95, reps: int = 2000, seed: int = 0) -> dict[str, Interval]:
    """Stationary block bootstrap interval of the profit factor of a trade sequence.

    Args:
        pnl: (n,) net PnL per trade in USDT, in the order the trades closed (n >= 5).
        level, reps, seed: as :func:`returns_bootstrap`.

    Returns:
        ``{"profit_factor": Interval}``; resamples without a losing trade give inf (kept),
        resamples with no non-zero PnL give NaN (left out).

    Raises:
        ValueError: not 1-D, fewer than 5 trades, non-finite values, bad level/reps.
    """
    p = _as_1d(pnl, "pnl", 5)
    _check_common(level, reps)
    b = block_size(p)
    dist = StationaryBootstrap(b, p, seed=np.random.default_rng(seed)).apply(
        lambda x: np.array([profit_factor(x)]), reps)
    return {"profit_factor": _interval(profit_factor(p), dist[:, 0], level, reps, b)}
