"""Monte Carlo of the trade sequence: how lucky was the order (and the draw) of the trades?

The trades are taken as returns on the equity at their entry, ``r_i = pnl_i / E_i`` with
``E_i = capital + sum of the earlier trades' pnl`` (one position at a time, as the
backtester trades; sizing is a fraction of equity, so returns, not USDT amounts, are what
carries over between orderings). A path compounds them: ``capital * prod(1 + r)``.

- **shuffle**: the same trade returns in a random order (``numpy.random.Generator.permuted``).
  The final return cannot change (a product does not depend on the order); the max
  drawdown distribution shows how much of the observed drawdown was the luck of the order.
- **resample**: n trade returns drawn with replacement (``arch.bootstrap.IIDBootstrap``):
  the distribution of the final return and max drawdown if the same trade outcomes were
  dealt again (Efron's bootstrap; treats trades as exchangeable).

See e.g. Pardo, *The Evaluation and Optimization of Trading Strategies* (2nd ed., 2008),
ch. 11, and Aronson, *Evidence-Based Technical Analysis* (2006), ch. 5.

Units: returns and drawdowns are fractions (drawdown <= 0 of the running peak, the
starting capital being the first peak; -1.0 = the account wiped out).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from arch.bootstrap import IIDBootstrap

__all__ = ["TradeMonteCarlo", "path_max_drawdown", "trade_monte_carlo", "trade_returns"]


@dataclass(frozen=True)
class TradeMonteCarlo:
    """Summary of :func:`trade_monte_carlo` (fractions; quantiles at ``(1-level)/2``, ``(1+level)/2``).

    ``final_return``: observed total return of the trades, ``prod(1 + r) - 1``.
    ``max_drawdown``: observed max drawdown of the trade-by-trade equity (<= 0).
    ``shuffle_dd_low`` / ``shuffle_dd_median`` / ``shuffle_dd_high``: max drawdown quantiles over
    reorderings (low = the worse tail). ``resample_return_low`` / ``_median`` / ``_high`` and
    ``resample_dd_low`` / ``_median`` / ``_high``: final return and drawdown quantiles over
    resamples with replacement. ``prob_loss``: share of resamples with a final return < 0.
    ``prob_worse_dd``: share of reorderings whose drawdown is deeper than the observed one.
    """

    n_trades: int
    reps: int
    level: float
    seed: int
    final_return: float
    max_drawdown: float
    shuffle_dd_low: float
    shuffle_dd_median: float
    shuffle_dd_high: float
    prob_worse_dd: float
    resample_return_low: float
    resample_return_median: float
    resample_return_high: float
    resample_dd_low: float
    resample_dd_median: float
    resample_dd_high: float
    prob_loss: float

    def to_dict(self) -> dict:
        return asdict(self)


def trade_returns(pnl, initial_capital: float) -> np.ndarray:
    """Return of each trade on the equity before it: ``pnl_i / (capital + sum_{j<i} pnl_j)``.

    ``pnl``: (n,) net PnL per trade in USDT, in the order the trades closed; ``initial_capital``
    USDT > 0. Returns (n,) float64 fractions. Raises ``ValueError`` on a non-1-D or non-finite
    input, a bad capital, or an equity <= 0 before some trade (the account was wiped out).
    """
    p = np.asarray(pnl, dtype=np.float64)
    if p.ndim != 1 or not np.isfinite(p).all():
        raise ValueError(f"pnl: need a 1-D array of finite USDT amounts, got shape {p.shape}")
    if not (math.isfinite(initial_capital) and initial_capital > 0):
        raise ValueError(f"initial_capital: must be a finite number > 0, got {initial_capital}")
    before = initial_capital + np.concatenate(([0.0], np.cumsum(p)[:-1]))
    if (before <= 0).any():
        raise ValueError(f"equity <= 0 before trade {int(np.argmax(before <= 0))}: returns undefined")
    return p / before


def path_max_drawdown(returns: np.ndarray) -> np.ndarray:
    """Max drawdown of the equity ``cumprod(1 + r)`` (start 1.0 = the first peak) along the last axis.

    ``returns``: (n,) or (reps, n) fractions. Returns a float (or (reps,) array) in [-1, 0];
    a return <= -1 wipes the path out (-1.0).
    """
    equity = np.cumprod(np.maximum(1.0 + np.asarray(returns, dtype=np.float64), 0.0), axis=-1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=-1), 1.0)
    return np.clip(np.min(equity / peak - 1.0, axis=-1), -1.0, 0.0)


def trade_monte_carlo(returns, *, reps: int = 2000, level: float = 0.95, seed: int = 0) -> TradeMonteCarlo:
    """Shuffle and resample the trade returns; distributions of final return and max drawdown.

    Args:
        returns: (n,) return of each trade on the equity before it, fractions, in the order
            the trades closed (n >= 2); from USDT PnLs use :func:`trade_returns`.
        reps: paths per experiment (>= 100).
        level: coverage of the reported quantile range, in (0, 1).
        seed: seed of both experiments (same seed -> same numbers).

    Returns:
        :class:`TradeMonteCarlo` (quantiles by ``numpy.quantile(method="inverted_cdf")``).

    Raises:
        ValueError: not 1-D, fewer than 2 trades, non-finite returns, bad reps/level.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or r.size < 2:
        raise ValueError(f"returns: need a 1-D array of at least 2 trades, got shape {r.shape}")
    if not np.isfinite(r).all():
        raise ValueError("returns: contains NaN or inf")
    if not (isinstance(reps, (int, np.integer)) and reps >= 100):
        raise ValueError(f"reps: need an integer >= 100, got {reps!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    qs = [(1.0 - level) / 2.0, 0.5, (1.0 + level) / 2.0]
    rng = np.random.default_rng(seed)
    observed_dd = float(path_max_drawdown(r))

    shuffle_dd = path_max_drawdown(rng.permuted(np.broadcast_to(r, (reps, r.size)), axis=1))

    def one(x: np.ndarray) -> np.ndarray:
        return np.array([np.prod(np.maximum(1.0 + x, 0.0)) - 1.0, path_max_drawdown(x)])

    dist = IIDBootstrap(r, seed=rng).apply(one, reps)
    sd = np.quantile(shuffle_dd, qs, method="inverted_cdf")
    rr = np.quantile(dist[:, 0], qs, method="inverted_cdf")
    rd = np.quantile(dist[:, 1], qs, method="inverted_cdf")
    return TradeMonteCarlo(
        n_trades=int(r.size), reps=int(reps), level=float(level), seed=int(seed),
        final_return=float(np.prod(np.maximum(1.0 + r, 0.0)) - 1.0), max_drawdown=observed_dd,
        shuffle_dd_low=float(sd[0]), shuffle_dd_median=float(sd[1]), shuffle_dd_high=float(sd[2]),
        prob_worse_dd=float(np.mean(shuffle_dd < observed_dd - 1e-12)),
        resample_return_low=float(rr[0]), resample_return_median=float(rr[1]), resample_return_high=float(rr[2]),
        resample_dd_low=float(rd[0]), resample_dd_median=float(rd[1]), resample_dd_high=float(rd[2]),
        prob_loss=float(np.mean(dist[:, 0] < 0.0)),
    )
