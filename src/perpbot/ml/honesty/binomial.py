"""Binomial test of the confident calls' precision against the base rate.

Question: are the model's confident long/short calls right more often than the base
rate would be by chance? Under the null hypothesis each of the n calls is right with
probability ``base_rate`` independently, so the number right k ~ Binomial(n, base_rate);
the one-sided p-value is ``P(K >= k)`` (``scipy.stats.binomtest``, alternative "greater").
The confidence bound of the precision is the one-sided Clopper-Pearson ("exact") lower
bound that matches the one-sided test (``BinomTestResult.proportion_ci``): the interval is
``[ci_low, 1]``, "the precision is at least ci_low with ``level`` confidence".

Calls on overlapping label horizons are not independent, so the p-value is optimistic
(too small) when calls cluster; read it as an upper bound on the evidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy.stats import binomtest

__all__ = ["PrecisionTest", "precision_binomial_test", "precision_test_from_metrics"]


@dataclass(frozen=True)
class PrecisionTest:
    """Outcome of the test: ``k`` right of ``n`` calls, ``precision = k / n`` (fraction),
    ``base_rate`` (fraction), one-sided ``p_value`` (alternative ``precision > base_rate``),
    one-sided Clopper-Pearson interval ``[ci_low, ci_high]`` at ``level`` (``ci_high`` is 1)."""

    k: int
    n: int
    precision: float
    base_rate: float
    p_value: float
    ci_low: float
    ci_high: float
    level: float

    def significant(self, alpha: float = 0.05) -> bool:
        """True when the p-value is below ``alpha``."""
        return self.p_value < alpha

    def to_dict(self) -> dict:
        return asdict(self)


def precision_binomial_test(k: int, n: int, base_rate: float, *, level: float = 0.95) -> PrecisionTest:
    """One-sided binomial test that ``k`` right of ``n`` calls beats ``base_rate``.

    Args:
        k: calls that were right (0 <= k <= n).
        n: confident calls made (>= 1).
        base_rate: chance of a right call without skill, a fraction in (0, 1) (e.g.
            ``precision_base`` of :func:`perpbot.ml.metrics.model_metrics`).
        level: confidence of the one-sided Clopper-Pearson lower bound.

    Raises:
        ValueError: k or n out of range, base_rate outside (0, 1), level outside (0, 1).
    """
    if not (isinstance(n, int) and n >= 1 and isinstance(k, int) and 0 <= k <= n):
        raise ValueError(f"need integers 0 <= k <= n and n >= 1, got k={k!r}, n={n!r}")
    if not (math.isfinite(base_rate) and 0.0 < base_rate < 1.0):
        raise ValueError(f"base_rate: must be in (0, 1), got {base_rate}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    res = binomtest(k, n, base_rate, alternative="greater")
    ci = res.proportion_ci(confidence_level=level, method="exact")
    return PrecisionTest(k=k, n=n, precision=k / n, base_rate=float(base_rate), p_value=float(res.pvalue),
                         ci_low=float(ci.low), ci_high=float(ci.high), level=float(level))


def precision_test_from_metrics(metrics: dict, *, level: float = 0.95) -> PrecisionTest | None:
    """The test for a :func:`perpbot.ml.metrics.model_metrics` dict, or None without calls.

    Uses ``n_calls``, ``precision`` (k = round(precision * n_calls)) and ``precision_base``.
    Returns None when there is no call or a figure is missing/NaN.
    """
    n = metrics.get("n_calls")
    prec = metrics.get("precision")
    base = metrics.get("precision_base")
    if not n or prec is None or base is None or not (math.isfinite(prec) and math.isfinite(base)):
        return None
    if not 0.0 < base < 1.0:
        return None
    n = int(n)
    return precision_binomial_test(int(round(prec * n)), n, float(base), level=level)
