"""Strategy registry: the signal array of each named strategy over a candle frame.

Signals are int8 per bar (+1 buy, -1 sell, 0 hold), decided at the bar's close and acted on
at the next open. Model strategies also give a per-bar size scale (1.0 = the configured size):

* ``ai``: the three-class triple-barrier model; with ``decision = "ev"`` (default) it enters
  when the expected return after costs clears the model's nested margin and sizes by
  fractional Kelly (:mod:`perpbot.ml.decision`); with ``decision = "threshold"`` it calls
  p_up / p_down >= ``confidence_threshold`` at the configured size;
* ``meta:<rule>``: meta-labelling (:mod:`perpbot.strategy.meta`): the rule proposes the side,
  a binary model decides whether to take it (EV rule, Kelly size; or p_take >= threshold).

Rules: ``ema-cross``, ``donchian`` and ``scoring`` (the primary rules of meta-labelling),
``buy-and-hold`` (always long). ``BASELINES`` are shown beside every model in a backtest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.ml.signals import proba_to_signal as proba_signals  # noqa: F401  (re-exported)
from perpbot.strategy.donchian import donchian_signals
from perpbot.strategy.ema_cross import ema_cross_signals
from perpbot.strategy.scoring import rule_scores

PRIMARY_RULES = ("ema-cross", "donchian", "scoring")
META_STRATEGIES = tuple(f"meta:{r}" for r in PRIMARY_RULES)
STRATEGIES = ("ai", "ema-cross", "scoring", "buy-and-hold", "donchian", *META_STRATEGIES)
BASELINES = ("buy-and-hold", "ema-cross", "scoring")
DONCHIAN_PERIOD = 20


def is_strategy(name: str) -> bool:
    """A built-in strategy name or a plug-in file reference (:mod:`perpbot.strategy.plugin`)."""
    from perpbot.strategy.plugin import is_plugin_ref

    return name in STRATEGIES or is_plugin_ref(name)


def is_model_strategy(name: str) -> bool:
    """True for strategies that need a trained model (``ai`` and ``meta:<rule>``)."""
    return name == "ai" or name in META_STRATEGIES


def meta_primary(name: str) -> str | None:
    """The primary rule of a ``meta:<rule>`` strategy, None for any other name.

    Raises:
        ValueError: ``meta:`` with a rule that is not one of :data:`PRIMARY_RULES`.
    """
    if not name.startswith("meta:"):
        return None
    rule = name[len("meta:"):]
    if rule not in PRIMARY_RULES:
        raise ValueError(f"unknown meta-labelling primary rule {rule!r}; choose one of "
                         f"{', '.join(META_STRATEGIES)}")
    return rule


def rule_signals(name: str, candles: pd.DataFrame) -> np.ndarray:
    """Signals of a rule strategy (``ema-cross``, ``donchian``, ``scoring``, ``buy-and-hold``, or a
    plug-in file, :mod:`perpbot.strategy.plugin`, with its default parameters) over ``candles``.

    Raises:
        ValueError: unknown strategy name (the message lists the valid ones).
    """
    close = candles["close"].to_numpy(np.float64)
    if name == "ema-cross":
        return ema_cross_signals(close, 20, 50)
    if name == "donchian":
        return donchian_signals(candles["high"].to_numpy(np.float64), candles["low"].to_numpy(np.float64), close,
                                DONCHIAN_PERIOD)
    if name == "scoring":
        _, sig = rule_scores(candles["open"].to_numpy(np.float64), candles["high"].to_numpy(np.float64),
                             candles["low"].to_numpy(np.float64), close)
        return sig
    if name == "buy-and-hold":
        return np.ones(len(close), dtype=np.int8)
    from perpbot.strategy.plugin import is_plugin_ref, load_strategy

    if is_plugin_ref(name):
        return load_strategy(name)(candles)
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def baseline_overrides(name: str) -> dict:
    """AccountConfig overrides of a baseline: buy-and-hold holds 1x full equity with no stops."""
    if name == "buy-and-hold":
        return {"sizing": "equity", "equity_fraction": 1.0, "leverage": 1.0, "stop_mode": "percent", "stop_loss": 0.0,
                "take_profit": 0.0, "trailing_stop": 0.0, "max_drawdown": 1.0, "max_daily_loss": 1.0}
    return {}


def check_model_decision(settings, model) -> None:
    """Raise ValueError when ``decision = "ev"`` but ``model`` was saved without EV tables."""
    decision = getattr(model, "decision", None) or {}
    if settings.decision == "ev" and not decision.get("final"):
        raise ValueError(f"model {getattr(model, 'version', '')} has no expected-value tables (trained before the "
                         "EV rule): retrain it (perpbot train) or set decision = \"threshold\"")


def model_signals(settings, name: str, candles: pd.DataFrame, proba: np.ndarray, model,
                  funding: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Signals and size scales of a model strategy over ``candles`` (the decision path shared by
    the backtest and the paper / live loop).

    Args:
        settings: :class:`perpbot.config.Settings` (decision, confidence_threshold, taker_fee,
            slippage, funding, kelly_fraction, risk_per_trade, atr_period, timeframe).
        name: ``ai`` or ``meta:<rule>``.
        candles: (n) validated candles; proba: float64 (n, 3) the model's (p_down, p_flat, p_up),
            NaN where it has no prediction.
        model: the bundle or its metadata: ``decision`` (EV tables, :func:`perpbot.ml.decision.fit_decision`)
            and ``label_settings`` (barriers the probabilities refer to).
        funding: funding events (``timestamp``, ``funding_rate``) for the expected funding.

    Returns:
        (signal int8 (n,), size float64 (n,) or None for the configured size, extras dict with
        ``ev_long`` / ``ev_short`` under the EV rule).

    Raises:
        ValueError: ``decision = "ev"`` with a model saved without EV tables (retrain), or an
            unknown strategy.
    """
    from perpbot.ml.signals import check_proba

    p = check_proba(proba)
    primary_rule = meta_primary(name)
    if name != "ai" and primary_rule is None:
        raise ValueError(f"{name!r} is not a model strategy")
    primary = rule_signals(primary_rule, candles) if primary_rule else None
    if settings.decision == "threshold":
        if primary is None:
            return proba_signals(p, settings.confidence_threshold), None, {}
        take = np.nan_to_num(p[:, 2], nan=0.0) >= settings.confidence_threshold
        return np.where(take, primary, 0).astype(np.int8), None, {}
    check_model_decision(settings, model)
    decision = model.decision
    from perpbot.data import timeframe_to_ms
    from perpbot.ml import decision as D

    bar = pd.Timedelta(milliseconds=timeframe_to_ms(settings.timeframe))
    ts = candles["timestamp"]
    tp, sl = D.barrier_fractions(model.label_settings, candles, settings.atr_period)
    fr = D.known_funding_rate(ts, bar, funding) if settings.funding else 0.0
    r_other, hold, margin = D.decision_rows(decision, ts)
    out = D.decide(p, decision["kind"], tp, sl, r_other, hold, margin, fr,
                   cost=D.round_trip_cost(settings.taker_fee_frac, settings.slippage_frac),
                   bars_per_funding=pd.Timedelta(hours=D.FUNDING_INTERVAL_HOURS) / bar,
                   kelly=settings.kelly_fraction, risk=settings.risk_frac, primary=primary)
    return out["signal"], out["size"], {"ev_long": out["ev_long"], "ev_short": out["ev_short"]}
