"""Probabilistic and Deflated Sharpe Ratio (selection bias and non-normal returns).

Sources:

- Bailey, D. H. & López de Prado, M. (2012), "The Sharpe Ratio Efficient Frontier",
  *Journal of Risk* 15(2): the Probabilistic Sharpe Ratio (PSR).
- Bailey, D. H. & López de Prado, M. (2014), "The Deflated Sharpe Ratio: Correcting for
  Selection Bias, Backtest Overfitting and Non-Normality", *Journal of Portfolio
  Management* 40(5): the expected maximum Sharpe ratio of N trials (eq. 7 / appendix) and
  the Deflated Sharpe Ratio (DSR).

Units: every Sharpe ratio here is **per period** (not annualised): ``mean(r) / std(r)``
of the T returns that were observed (daily returns -> a daily Sharpe ratio). Convert an
annualised Sharpe ratio with ``sr / sqrt(periods_per_year)`` and an annualised variance of
Sharpe ratios with ``var / periods_per_year``. ``kurtosis`` is the ordinary
(non-excess) kurtosis: 3 for normal returns. Probabilities (PSR, DSR) are in [0, 1].

Formulas (``Z`` = standard normal CDF, ``g3`` = skewness, ``g4`` = kurtosis, ``T`` = number
of returns, ``SR`` = the observed per-period Sharpe ratio):

    PSR(SR*) = Z( (SR - SR*) * sqrt(T - 1) / sqrt(1 - g3*SR + (g4 - 1)/4 * SR^2) )

    E[max SR] = sqrt(V) * ( (1 - gamma) * Z^-1(1 - 1/N) + gamma * Z^-1(1 - 1/(N e)) )

    DSR = PSR(E[max SR])

with ``V`` the variance of the N trials' Sharpe ratios and ``gamma`` the Euler-Mascheroni
constant (``numpy.euler_gamma``). The paper assumes the trials' Sharpe ratios are centred
on 0 (no skill); a single trial (N = 1) or a zero variance gives E[max SR] = 0, so the DSR
of a single plain backtest is PSR(0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "SharpeStats",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "sharpe_stats",
]


@dataclass(frozen=True)
class SharpeStats:
    """Moments of a return series that the PSR/DSR need.

    ``sharpe``: per-period Sharpe ratio ``mean / std(ddof=1)`` (NaN when the standard
    deviation is 0: all returns equal); ``n_obs``: number of returns T; ``skew``: sample skewness;
    ``kurtosis``: non-excess sample kurtosis (normal = 3); NaN when undefined.
    """

    sharpe: float
    n_obs: int
    skew: float
    kurtosis: float


def sharpe_stats(returns) -> SharpeStats:
    """Per-period Sharpe ratio, skewness and (non-excess) kurtosis of ``returns``.

    ``returns``: 1-D array-like of simple returns as fractions (e.g. daily ``e[d]/e[d-1] - 1``).
    The Sharpe ratio uses ``std(ddof=1)`` and a zero risk-free rate, like
    :func:`perpbot.ml.trading_metrics.trading_metrics` (which then multiplies by ``sqrt(365)``).
    Skewness and kurtosis are ``scipy.stats.skew`` / ``scipy.stats.kurtosis(fisher=False)``
    (population moment estimates, as in the paper). A series with zero variance gives NaN
    for all three. Raises ``ValueError`` on a non-1-D input, fewer than 2 values or a
    non-finite value.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns: expected a 1-D array, got shape {r.shape}")
    if r.size < 2:
        raise ValueError(f"returns: need at least 2 values, got {r.size}")
    if not np.isfinite(r).all():
        raise ValueError(f"returns: non-finite value at position {int(np.argmax(~np.isfinite(r)))}")
    std = float(r.std(ddof=1))
    if np.ptp(r) == 0 or not std > 0:
        return SharpeStats(math.nan, int(r.size), math.nan, math.nan)
    return SharpeStats(
        sharpe=float(r.mean()) / std,
        n_obs=int(r.size),
        skew=float(stats.skew(r)),
        kurtosis=float(stats.kurtosis(r, fisher=True) + 3.0),
    )


def _check_moments(sharpe: float, n_obs: int, skew: float, kurtosis: float) -> None:
    if not (isinstance(n_obs, (int, np.integer)) and n_obs >= 2):
        raise ValueError(f"n_obs: need an integer >= 2, got {n_obs!r}")
    for name, v in (("sharpe", sharpe), ("skew", skew), ("kurtosis", kurtosis)):
        if not math.isfinite(v):
            raise ValueError(f"{name}: must be finite, got {v}")
    if kurtosis < 1.0:
        raise ValueError(f"kurtosis: the non-excess kurtosis is >= 1, got {kurtosis} (excess kurtosis given?)")


def probabilistic_sharpe_ratio(sharpe: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0,
                               benchmark: float = 0.0) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark`` (Bailey & López de Prado, 2012).

    Args:
        sharpe: observed **per-period** Sharpe ratio.
        n_obs: number of returns T it was measured on (>= 2).
        skew: skewness of the returns (0 for normal returns).
        kurtosis: non-excess kurtosis of the returns (3 for normal returns).
        benchmark: the per-period Sharpe ratio SR* to beat.

    Returns:
        PSR in [0, 1]: ``Z((SR - SR*) sqrt(T-1) / sqrt(1 - skew SR + (kurtosis-1)/4 SR^2))``.

    Raises:
        ValueError: non-finite inputs, ``n_obs < 2``, ``kurtosis < 1``, or a non-positive
        variance term (possible only for extreme skew with a large Sharpe ratio).
    """
    _check_moments(sharpe, n_obs, skew, kurtosis)
    if not math.isfinite(benchmark):
        raise ValueError(f"benchmark: must be finite, got {benchmark}")
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe ** 2
    if not var > 0:
        raise ValueError(f"PSR undefined: 1 - skew*SR + (kurtosis-1)/4*SR^2 = {var} <= 0")
    return float(stats.norm.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var)))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` unskilled trials (Bailey & López de Prado, 2014).

    ``sqrt(V) * ((1 - gamma) Z^-1(1 - 1/N) + gamma Z^-1(1 - 1/(N e)))`` with gamma the
    Euler-Mascheroni constant. ``sharpe_variance`` V is the variance across the trials of
    their Sharpe ratios, in the units the result should have (per-period variance ->
    per-period Sharpe ratio). Returns 0.0 for ``n_trials == 1`` or ``V == 0`` (no selection).
    Raises ``ValueError`` for ``n_trials < 1`` or a negative / non-finite variance.
    """
    if not (isinstance(n_trials, (int, np.integer)) and n_trials >= 1):
        raise ValueError(f"n_trials: need an integer >= 1, got {n_trials!r}")
    if not (math.isfinite(sharpe_variance) and sharpe_variance >= 0):
        raise ValueError(f"sharpe_variance: need a finite value >= 0, got {sharpe_variance}")
    if n_trials == 1 or sharpe_variance == 0:
        return 0.0
    g = float(np.euler_gamma)
    z = (1.0 - g) * stats.norm.ppf(1.0 - 1.0 / n_trials) + g * stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(sharpe_variance) * z)


def deflated_sharpe_ratio(sharpe: float, n_obs: int, skew: float, kurtosis: float, *, n_trials: int,
                          sharpe_variance: float) -> float:
    """Deflated Sharpe Ratio: the PSR against the expected maximum Sharpe ratio of the trials.

    Bailey & López de Prado (2014), eq. for DSR: ``PSR(E[max SR])`` where
    ``E[max SR] = expected_max_sharpe(n_trials, sharpe_variance)``. All Sharpe quantities
    are **per period** (see the module docstring for converting annualised figures).
    ``n_trials`` counts every configuration tried (1 for a plain backtest: then DSR =
    PSR(0)). Returns a probability in [0, 1]; 0.95 is the usual bar for a discovery.
    Raises ``ValueError`` as :func:`probabilistic_sharpe_ratio` and :func:`expected_max_sharpe`.
    """
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, n_obs, skew, kurtosis, benchmark=sr0)
