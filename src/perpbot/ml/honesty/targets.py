"""The seed targets users quote, checked pass/fail, each beside its base rate or baseline.

| target | metric (source) | pass when |
|---|---|---|
| Sharpe ratio > 1.5 | ``sharpe``, annualised daily Sharpe (:func:`perpbot.ml.trading_metrics.trading_metrics`) | value > 1.5 |
| max drawdown < 15 % | ``max_drawdown`` (trading_metrics, a negative fraction) | ``abs(value) < 0.15`` |
| win rate > 55 % | ``win_rate`` (trading_metrics, fraction) | value > 0.55 |
| profit factor > 1.3 | ``profit_factor`` (trading_metrics) | value > 1.3 |
| accuracy > 60 % | ``accuracy`` (:func:`perpbot.ml.metrics.model_metrics`, fraction) | value > 0.60 |
| directional accuracy > 65 % | ``directional_accuracy`` (model_metrics, fraction) | value > 0.65 |

The reference beside a trading target is the best of the baselines (buy-and-hold, EMA
cross, rule scoring: the highest value, or the shallowest drawdown); beside a model target
it is its base rate (``accuracy_base``: always the majority class;
``directional_accuracy_base``: always the majority direction). A NaN / missing value is
"n/a" and does not pass. Max drawdown rows hold the drawdown's magnitude (``0.23`` = the
equity fell 23 % below its peak), so the comparison reads as the target is worded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

__all__ = ["SEED_TARGETS", "Target", "TargetRow", "seed_targets"]


@dataclass(frozen=True)
class Target:
    """One seed target: ``key`` in its metrics dict (``source`` "strategy" or "model"),
    ``op`` ">" or "<", ``threshold`` in the metric's unit (``unit`` "ratio" or "fraction")."""

    key: str
    label: str
    source: str
    op: str
    threshold: float
    unit: str


SEED_TARGETS: tuple[Target, ...] = (
    Target("sharpe", "Sharpe ratio > 1.5", "strategy", ">", 1.5, "ratio"),
    Target("max_drawdown", "max drawdown < 15 %", "strategy", "<", 0.15, "fraction"),
    Target("win_rate", "win rate > 55 %", "strategy", ">", 0.55, "fraction"),
    Target("profit_factor", "profit factor > 1.3", "strategy", ">", 1.3, "ratio"),
    Target("accuracy", "accuracy > 60 %", "model", ">", 0.60, "fraction"),
    Target("directional_accuracy", "directional accuracy > 65 %", "model", ">", 0.65, "fraction"),
)


@dataclass(frozen=True)
class TargetRow:
    """A checked target. ``value`` / ``reference`` in the target's unit (NaN = n/a);
    ``passed`` None when the value is n/a; ``reference_label`` e.g. "base rate" or
    "best baseline (ema-cross)"; ``beats_reference`` None when either side is n/a;
    ``baselines``: every baseline's value (trading targets only)."""

    key: str
    label: str
    op: str
    threshold: float
    unit: str
    value: float
    passed: bool | None
    reference_label: str
    reference: float
    beats_reference: bool | None
    baselines: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _num(d: dict | None, key: str) -> float:
    if not d:
        return math.nan
    v = d.get(key)
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _better(a: float, b: float, op: str) -> bool | None:
    if math.isnan(a) or math.isnan(b):
        return None
    return a > b if op == ">" else a < b


def seed_targets(strategy_metrics: dict, model_metrics: dict | None = None,
                 baseline_metrics: dict[str, dict] | None = None) -> list[TargetRow]:
    """Check :data:`SEED_TARGETS` (see the module docstring).

    Args:
        strategy_metrics: the strategy's ``trading_metrics`` dict (keys sharpe,
            max_drawdown, win_rate, profit_factor).
        model_metrics: the model's ``model_metrics`` dict (accuracy, accuracy_base,
            directional_accuracy, directional_accuracy_base), or None (model rows n/a).
        baseline_metrics: baseline name -> its ``trading_metrics`` dict, or None.

    Returns:
        One :class:`TargetRow` per target, in :data:`SEED_TARGETS` order.
    """
    rows = []
    for t in SEED_TARGETS:
        if t.source == "strategy":
            value = _num(strategy_metrics, t.key)
            base = {name: _num(m, t.key) for name, m in (baseline_metrics or {}).items()}
            if t.key == "max_drawdown":
                value = abs(value)
                base = {k: abs(v) for k, v in base.items()}
            known = {k: v for k, v in base.items() if not math.isnan(v)}
            if known:
                pick = (min if t.op == "<" else max)(known, key=known.get)
                ref_label, ref = f"best baseline ({pick})", known[pick]
            else:
                ref_label, ref = "best baseline", math.nan
        else:
            value = _num(model_metrics, t.key)
            ref_label, ref, base = "base rate", _num(model_metrics, f"{t.key}_base"), {}
        rows.append(TargetRow(key=t.key, label=t.label, op=t.op, threshold=t.threshold, unit=t.unit, value=value,
                              passed=_better(value, t.threshold, t.op), reference_label=ref_label, reference=ref,
                              beats_reference=_better(value, ref, t.op), baselines=base))
    return rows
