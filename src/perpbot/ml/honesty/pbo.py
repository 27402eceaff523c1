"""Probability of Backtest Overfitting (PBO) by combinatorially symmetric cross-validation (CSCV).

Source: Bailey, D. H., Borwein, J. M., López de Prado, M. & Zhu, Q. J. (2017), "The
Probability of Backtest Overfitting", *Journal of Computational Finance* 20(4), section 2
(the CSCV algorithm) and section 3 (performance degradation, probability of loss).

Algorithm, for a (T periods x N trials) matrix M of per-period returns, one column per
configuration tried:

1. Split the rows of M, in time order, into S disjoint blocks of equal length T // S
   (S even; the ``T mod S`` OLDEST rows are dropped so the blocks are equal).
2. For every one of the C(S, S/2) combinations c of S/2 blocks: the in-sample set J is
   the rows of those blocks, the out-of-sample set J' the rows of the other S/2 blocks.
3. Score every trial on J (R) and on J' (R'); ``n*`` = the trial with the best R.
4. ``w`` = relative rank of R'[n*] among R': ``rank / (N + 1)`` with ranks 1..N (ties
   averaged, ``scipy.stats.rankdata``); logit ``lambda = ln(w / (1 - w))``.
5. PBO = share of combinations with ``lambda <= 0``: how often the in-sample winner is at
   or below the median out of sample.

The score is the per-period Sharpe ratio ``mean / std(ddof=1)`` of each column by default
(the paper's choice). Pure noise trials give PBO near 0.5; a trial with a real edge that
wins in sample and stays on top out of sample gives PBO near 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Callable

import numpy as np
from scipy import stats
from scipy.special import comb, logit

__all__ = ["PBOResult", "probability_of_backtest_overfitting"]

#: Above this many combinations the computation is refused (S = 16 gives 12,870).
MAX_COMBINATIONS = 200_000


@dataclass(frozen=True)
class PBOResult:
    """Outcome of CSCV.

    ``pbo``: share of combinations whose logit <= 0 (a probability in [0, 1]).
    ``logits``: (C,) float64 logits of the IS-best trial's OOS relative rank, one per
    combination. ``is_perf`` / ``oos_perf``: (C,) float64 score of the IS-best trial in
    sample and out of sample (the performance degradation pairs; per-period Sharpe ratios
    with the default score). ``best_trial``: (C,) int64 column index of the IS-best trial.
    ``degradation_slope`` / ``degradation_intercept``: least-squares line
    ``oos = slope * is + intercept`` (``scipy.stats.linregress``; NaN when undefined).
    ``prob_oos_loss``: share of combinations where the IS-best trial scores < 0 out of
    sample. ``n_splits`` = S, ``n_trials`` = N, ``n_obs`` = rows used (S * (T // S)).
    """

    pbo: float
    logits: np.ndarray
    is_perf: np.ndarray
    oos_perf: np.ndarray
    best_trial: np.ndarray
    degradation_slope: float
    degradation_intercept: float
    prob_oos_loss: float
    n_splits: int
    n_trials: int
    n_obs: int

    def summary(self) -> dict[str, float]:
        """Scalar figures only (JSON-friendly): pbo, logit mean/median, slope, intercept, loss prob, sizes."""
        return {
            "pbo": self.pbo, "logit_mean": float(np.mean(self.logits)), "logit_median": float(np.median(self.logits)),
            "degradation_slope": self.degradation_slope, "degradation_intercept": self.degradation_intercept,
            "prob_oos_loss": self.prob_oos_loss, "n_combinations": int(self.logits.size),
            "n_splits": self.n_splits, "n_trials": self.n_trials, "n_obs": self.n_obs,
        }


def _sharpe_from_sums(s1: np.ndarray, s2: np.ndarray, n: int) -> np.ndarray:
    """Per-period Sharpe ratio (ddof=1) from sums and sums of squares over n rows; NaN if std == 0."""
    mean = s1 / n
    var = (s2 - n * mean ** 2) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = mean / np.sqrt(np.maximum(var, 0.0))
    # variance ~ 0 within rounding: the score is undefined
    out[~(var > 1e-14 * np.maximum(s2 / n, 1e-300))] = np.nan
    return out


def _check(returns, n_splits: int) -> np.ndarray:
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"returns: expected a 2-D (T periods x N trials) array, got shape {m.shape}")
    if m.shape[1] < 2:
        raise ValueError(f"returns: need at least 2 trials (columns), got {m.shape[1]}")
    if not np.isfinite(m).all():
        raise ValueError("returns: contains NaN or inf")
    if not (isinstance(n_splits, (int, np.integer)) and n_splits >= 2 and n_splits % 2 == 0):
        raise ValueError(f"n_splits: need an even integer >= 2, got {n_splits!r}")
    if m.shape[0] // n_splits < 2:
        raise ValueError(f"returns: {m.shape[0]} rows give fewer than 2 rows per block for {n_splits} splits")
    if comb(n_splits, n_splits // 2, exact=True) > MAX_COMBINATIONS:
        raise ValueError(f"n_splits={n_splits}: C(S, S/2) exceeds {MAX_COMBINATIONS:,} combinations")
    return m


def probability_of_backtest_overfitting(
    returns,
    n_splits: int = 16,
    *,
    score: Callable[[np.ndarray], np.ndarray] | None = None,
) -> PBOResult:
    """PBO of selecting the best of N trials by in-sample performance (CSCV; see the module docstring).

    Args:
        returns: (T, N) float array-like of per-period returns (fractions) of the N trials
            over the same T periods, rows in time order. A pandas DataFrame works.
        n_splits: S, the even number of blocks (default 16 -> C(16, 8) = 12,870 combinations).
        score: optional ``f(rows: (t, N) array) -> (N,) array`` of performance per trial
            (higher = better); default the per-period Sharpe ratio (computed from block sums).
            A NaN score (e.g. a constant column) ranks lowest.

    Returns:
        :class:`PBOResult`.

    Raises:
        ValueError: not 2-D, fewer than 2 trials, NaN/inf, S odd or < 2, fewer than 2 rows
        per block, or more than ``MAX_COMBINATIONS`` combinations.
    """
    m = _check(returns, n_splits)
    t, n = m.shape
    size = t // n_splits
    m = m[t - size * n_splits:]  # drop the oldest rows
    blocks = m.reshape(n_splits, size, n)
    combos = np.array(list(combinations(range(n_splits), n_splits // 2)), dtype=np.int64)
    mask = np.zeros((len(combos), n_splits), dtype=bool)
    mask[np.arange(len(combos))[:, None], combos] = True
    half = size * n_splits // 2

    if score is None:
        s1, s2 = blocks.sum(axis=1), (blocks ** 2).sum(axis=1)  # (S, N)
        w = mask.astype(np.float64)
        is_score = _sharpe_from_sums(w @ s1, w @ s2, half)
        oos_score = _sharpe_from_sums((1.0 - w) @ s1, (1.0 - w) @ s2, half)
    else:
        is_score = np.empty((len(combos), n))
        oos_score = np.empty((len(combos), n))
        for i, row in enumerate(mask):
            is_score[i] = np.asarray(score(blocks[row].reshape(-1, n)), dtype=np.float64)
            oos_score[i] = np.asarray(score(blocks[~row].reshape(-1, n)), dtype=np.float64)

    ranked_is = np.where(np.isnan(is_score), -np.inf, is_score)
    best = np.argmax(ranked_is, axis=1)
    rows = np.arange(len(combos))
    ranks = stats.rankdata(np.where(np.isnan(oos_score), -np.inf, oos_score), axis=1)  # 1..N, ties averaged
    omega = ranks[rows, best] / (n + 1.0)
    logits = logit(omega)
    is_best, oos_best = is_score[rows, best], oos_score[rows, best]
    ok = np.isfinite(is_best) & np.isfinite(oos_best)
    slope = intercept = math.nan
    if ok.sum() >= 2 and np.ptp(is_best[ok]) > 0:
        fit = stats.linregress(is_best[ok], oos_best[ok])
        slope, intercept = float(fit.slope), float(fit.intercept)
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)), logits=logits, is_perf=is_best, oos_perf=oos_best,
        best_trial=best.astype(np.int64), degradation_slope=slope, degradation_intercept=intercept,
        prob_oos_loss=float(np.mean(oos_best < 0.0)), n_splits=int(n_splits), n_trials=int(n), n_obs=int(m.shape[0]),
    )
