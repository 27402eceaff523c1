"""Strategy registry: the signal array of each named strategy over a candle frame.

Signals are int8 per bar (+1 buy, -1 sell, 0 hold), decided at the bar's close and acted on
at the next open. ``ai`` turns model probabilities into calls above the confidence threshold;
``ema-cross`` and ``scoring`` are the rule baselines; ``buy-and-hold`` is always long.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.ml.signals import proba_to_signal as proba_signals  # noqa: F401  (re-exported)
from perpbot.strategy.ema_cross import ema_cross_signals
from perpbot.strategy.scoring import rule_scores

STRATEGIES = ("ai", "ema-cross", "scoring", "buy-and-hold")
BASELINES = ("buy-and-hold", "ema-cross", "scoring")


def rule_signals(name: str, candles: pd.DataFrame) -> np.ndarray:
    """Signals of a rule strategy (``ema-cross``, ``scoring``, ``buy-and-hold``) over ``candles``.

    Raises:
        ValueError: unknown strategy name (the message lists the valid ones).
    """
    close = candles["close"].to_numpy(np.float64)
    if name == "ema-cross":
        return ema_cross_signals(close, 20, 50)
    if name == "scoring":
        _, sig = rule_scores(candles["open"].to_numpy(np.float64), candles["high"].to_numpy(np.float64),
                             candles["low"].to_numpy(np.float64), close)
        return sig
    if name == "buy-and-hold":
        return np.ones(len(close), dtype=np.int8)
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def baseline_overrides(name: str) -> dict:
    """SimConfig overrides of a baseline: buy-and-hold holds 1x full equity with no stops."""
    if name == "buy-and-hold":
        return {"sizing": "equity", "equity_fraction": 1.0, "leverage": 1.0, "stop_loss": 0.0,
                "take_profit": 0.0, "trailing_stop": 0.0, "max_drawdown": 1.0, "max_daily_loss": 1.0}
    return {}
