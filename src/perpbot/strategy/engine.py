"""The decision code shared by the paper and the live loop (:class:`SignalEngine`): a trailing
window of closed candles -> features -> model -> decision rule, or a rule's signal."""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd

from perpbot.features.true_range import trailing_atr
from perpbot.strategy.signals import check_model_decision, is_model_strategy, meta_primary, model_signals, rule_signals


class SignalEngine:
    """The decision code shared by the paper and the live loop: a trailing window of closed
    candles -> features -> model -> decision rule (strategies "ai" and "meta:<rule>", through
    :func:`perpbot.strategy.signals.model_signals`, as the backtest), or a rule's signal.

    Args:
        settings: :class:`perpbot.config.Settings` (live_window, atr_period, timeframe,
            decision, confidence_threshold, costs, kelly_fraction, risk_per_trade, funding).
        strategy: "ai" / "meta:<rule>" (need ``bundle``) or a rule name.
        bundle: a loaded :class:`perpbot.ml.registry.ModelBundle` of that strategy.
        funding: funding-rate events for the features (ignored when ``settings.funding`` is off).
        mark, series: mark-price candles and other assets' candles (``{"btc": ..., "eth": ...}``)
            for a model whose feature groups need them (:mod:`perpbot.features.groups`).
    Raises ValueError for a model strategy without a model, or a model whose feature groups need
    series the loop does not supply (e.g. ``cross_asset`` in live mode: there is no BTC/ETH feed)
    or more candles than ``live_window``.
    After :meth:`decide`, ``size`` is the decision's entry size scale (1.0 = the configured size).
    """

    COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]

    def __init__(self, settings, strategy: str, *, bundle=None, funding: pd.DataFrame | None = None,
                 mark: pd.DataFrame | None = None, series: dict | None = None) -> None:
        from perpbot.features.groups import check_loop_inputs

        if is_model_strategy(strategy) and bundle is None:
            raise ValueError(f"strategy {strategy!r} needs a trained model (perpbot train --strategy {strategy})")
        if bundle is not None:
            check_model_decision(settings, bundle)
        self.settings, self.strategy, self.bundle = settings, strategy, bundle
        self.funding = funding if settings.funding else None
        self.groups = list(getattr(bundle, "feature_groups", None) or ["candles"]) if bundle is not None else []
        self.mark, self.series = mark, dict(series or {})
        if is_model_strategy(strategy):
            check_loop_inputs(self.groups, settings.timeframe, settings.live_window, mark=mark, series=self.series)
        self.window: deque = deque(maxlen=settings.live_window)
        self.size = 1.0

    def set_bundle(self, bundle) -> None:
        """Decide with ``bundle`` from the next :meth:`decide` on (a promoted model). Raises ValueError
        when it computes other feature groups than the current model, or lacks what the decision
        rule needs (see :func:`perpbot.strategy.signals.check_model_decision`)."""
        groups = list(getattr(bundle, "feature_groups", None) or ["candles"])
        if self.bundle is not None and groups != self.groups:
            raise ValueError(f"model {bundle.version} uses the feature groups {groups}, the node computes {self.groups}")
        check_model_decision(self.settings, bundle)
        self.bundle, self.groups = bundle, groups

    def push(self, ts: pd.Timestamp, o: float, h: float, lo: float, c: float, v: float) -> pd.DataFrame:
        """Append a closed candle (UTC open time, USDT prices, base volume); the window as a frame."""
        self.window.append((ts, o, h, lo, c, v))
        frame = pd.DataFrame(list(self.window), columns=self.COLUMNS)
        frame.attrs["timeframe"] = self.settings.timeframe
        return frame

    def atr(self, frame: pd.DataFrame) -> float:
        """ATR (USDT, TA-Lib, ``atr_period``) at the last candle of the window; NaN while too short."""
        if len(frame) <= self.settings.atr_period:
            return float("nan")
        highs, lows, closes = (frame[k].to_numpy(np.float64) for k in ("high", "low", "close"))
        return trailing_atr(highs, lows, closes, self.settings.atr_period)

    def decide(self, frame: pd.DataFrame) -> tuple[int, np.ndarray | None]:
        """(signal -1/0/+1, probabilities (p_down, p_flat, p_up) or None) at the window's last candle;
        sets ``size`` (entry size scale of the decision)."""
        self.size = 1.0
        if not is_model_strategy(self.strategy):
            return int(rule_signals(self.strategy, frame)[-1]), None
        from perpbot.features.groups import FeatureInputs, compute_groups
        from perpbot.strategy.meta import meta_frame

        frame.attrs["timeframe"] = self.settings.timeframe
        feats = compute_groups(frame, self.groups, FeatureInputs(self.funding, self.mark, self.series),
                               with_funding=self.funding is not None)
        rule = meta_primary(self.strategy)
        if rule is not None:
            feats = meta_frame(feats, rule_signals(rule, frame))
        k = context_rows(self.bundle)  # a sequence model reads its row and the k - 1 before it
        last = self.bundle.predict_proba(feats.iloc[-k:], frame["timestamp"].iloc[-k:])[-1]
        proba = np.full((len(frame), 3), np.nan)
        proba[-1] = last
        signal, size, _ = model_signals(self.settings, self.strategy, frame, proba, self.bundle, self.funding)
        if size is not None:
            self.size = float(size[-1])
        return int(signal[-1]), last


def context_rows(bundle) -> int:
    """Feature rows a prediction of the last bar needs: the LSTM's ``seq_len`` (the bar and the
    ``seq_len - 1`` before it, :mod:`perpbot.ml.lstm`), else 1."""
    if getattr(bundle, "model_name", None) == "lstm":
        return max(1, int((getattr(bundle, "params", None) or {}).get("seq_len", 1)))
    return 1
