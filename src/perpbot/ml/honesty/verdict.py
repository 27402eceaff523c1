"""The verdict on skill: "edge confirmed", "no edge shown" or "too few trades to judge".

Rules (issue 9 of the project; thresholds from the literature's usual bars):

- fewer than ``MIN_TRADES_TO_JUDGE`` (30) trades -> **too few trades to judge**;
- **edge confirmed** only when ALL hold: Deflated Sharpe Ratio >= ``DSR_MIN`` (0.95;
  Bailey & López de Prado, 2014), Probability of Backtest Overfitting < ``PBO_MAX`` (0.5;
  Bailey, Borwein, López de Prado & Zhu, 2017), the inner hold-out (months no trial saw)
  is profitable after fees, slippage and funding (total return > 0), and at least
  ``MIN_TRADES`` (100) trades;
- otherwise **no edge shown**, with every failed or missing condition as a reason.

A missing figure (no optimisation -> no PBO; no inner hold-out; a NaN DSR) is a failed
condition, named in ``missing``: a single plain backtest can never be "edge confirmed".
The :class:`Verdict` serialises to JSON (NaN/inf -> null) to be saved beside a model.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field

__all__ = [
    "DSR_MIN", "EDGE_CONFIRMED", "MIN_TRADES", "MIN_TRADES_TO_JUDGE", "NO_EDGE", "PBO_MAX", "TOO_FEW_TRADES",
    "Verdict", "judge", "json_safe",
]

EDGE_CONFIRMED = "edge confirmed"
NO_EDGE = "no edge shown"
TOO_FEW_TRADES = "too few trades to judge"
DSR_MIN = 0.95
PBO_MAX = 0.5
MIN_TRADES = 100
MIN_TRADES_TO_JUDGE = 30


def json_safe(v):
    """JSON-safe value: NaN/inf -> None, numpy scalars -> Python int/float."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    f = float(v)
    return f if math.isfinite(f) else None


@dataclass(frozen=True)
class Verdict:
    """``verdict``: one of :data:`EDGE_CONFIRMED`, :data:`NO_EDGE`, :data:`TOO_FEW_TRADES`.
    ``reasons``: human-readable lines (why; for a confirmed edge, the checks it passed).
    ``missing``: names of the figures that were not available ("dsr", "pbo", "holdout").
    ``numbers``: the inputs (dsr, pbo, holdout_return as a fraction, trade_count, n_trials),
    None where unavailable."""

    verdict: str
    reasons: list[str]
    missing: list[str] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)

    @property
    def confirmed(self) -> bool:
        return self.verdict == EDGE_CONFIRMED

    def line(self) -> str:
        """One line for a banner: ``"no edge shown: DSR 0.41 < 0.95; PBO not available ..."``."""
        return f"{self.verdict}: " + "; ".join(self.reasons) if self.reasons else self.verdict

    def to_dict(self) -> dict:
        d = asdict(self)
        d["numbers"] = {k: json_safe(v) for k, v in self.numbers.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        """Inverse of :meth:`to_dict`. Raises ``ValueError`` on an unknown verdict."""
        if d.get("verdict") not in (EDGE_CONFIRMED, NO_EDGE, TOO_FEW_TRADES):
            raise ValueError(f"unknown verdict {d.get('verdict')!r}")
        return cls(verdict=d["verdict"], reasons=list(d.get("reasons", [])), missing=list(d.get("missing", [])),
                   numbers=dict(d.get("numbers", {})))

    @classmethod
    def from_json(cls, text: str) -> "Verdict":
        return cls.from_dict(json.loads(text))


def _known(v) -> bool:
    return v is not None and math.isfinite(float(v))


def _beside(value: float, limit: float) -> str:
    """``value`` with 3 decimals, or as many more (up to 6) as it takes not to read as ``limit`` itself: a DSR
    of 0.9499 shows "0.9499 < 0.95", not "0.950 < 0.95"."""
    for digits in range(3, 7):
        text = f"{value:.{digits}f}"
        if value == limit or float(text) != limit:
            return text
    return f"{value:.6f}"


def judge(*, trade_count: int, dsr: float | None, pbo: float | None = None, holdout_return: float | None = None,
          n_trials: int = 1) -> Verdict:
    """Apply the rules of the module docstring.

    Args:
        trade_count: trades of the evaluated (out-of-sample) backtest, >= 0.
        dsr: Deflated Sharpe Ratio in [0, 1] (:func:`perpbot.ml.honesty.sharpe.deflated_sharpe_ratio`);
            None/NaN = unavailable.
        pbo: Probability of Backtest Overfitting in [0, 1] over the optimisation's trials;
            None = unavailable (a plain backtest has no trials to compare).
        holdout_return: total return (fraction, after fees, slippage and funding) of the
            chosen configuration on the inner hold-out; None = no hold-out was kept.
        n_trials: configurations tried (recorded in ``numbers``).

    Raises:
        ValueError: negative trade_count, or dsr/pbo outside [0, 1].
    """
    if trade_count < 0:
        raise ValueError(f"trade_count: must be >= 0, got {trade_count}")
    for name, v in (("dsr", dsr), ("pbo", pbo)):
        if _known(v) and not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name}: must be in [0, 1], got {v}")
    numbers = {"dsr": dsr, "pbo": pbo, "holdout_return": holdout_return, "trade_count": int(trade_count),
               "n_trials": int(n_trials)}
    failed: list[str] = []
    passed: list[str] = []
    missing: list[str] = []
    if trade_count < MIN_TRADES:
        failed.append(f"only {trade_count} trades (< {MIN_TRADES} needed)")
    else:
        passed.append(f"{trade_count} trades (>= {MIN_TRADES})")
    if not _known(dsr):
        missing.append("dsr")
        failed.append("deflated Sharpe ratio not available")
    elif dsr < DSR_MIN:
        failed.append(f"deflated Sharpe ratio {_beside(dsr, DSR_MIN)} < {DSR_MIN}")
    else:
        passed.append(f"deflated Sharpe ratio {_beside(dsr, DSR_MIN)} >= {DSR_MIN}")
    if not _known(pbo):
        missing.append("pbo")
        failed.append("probability of backtest overfitting not available (no optimisation trials to compare)")
    elif pbo >= PBO_MAX:
        failed.append(f"probability of backtest overfitting {_beside(pbo, PBO_MAX)} >= {PBO_MAX}")
    else:
        passed.append(f"probability of backtest overfitting {_beside(pbo, PBO_MAX)} < {PBO_MAX}")
    if not _known(holdout_return):
        missing.append("holdout")
        failed.append("no inner hold-out result (months no trial saw)")
    elif holdout_return <= 0:
        failed.append(f"inner hold-out not profitable after costs ({holdout_return * 100:+.2f} %)")
    else:
        passed.append(f"inner hold-out profitable after costs ({holdout_return * 100:+.2f} %)")

    if trade_count < MIN_TRADES_TO_JUDGE:
        head = f"only {trade_count} trades (< {MIN_TRADES_TO_JUDGE})"
        return Verdict(TOO_FEW_TRADES, [head] + failed[1:], missing, numbers)
    if failed:
        return Verdict(NO_EDGE, failed, missing, numbers)
    return Verdict(EDGE_CONFIRMED, passed, missing, numbers)
