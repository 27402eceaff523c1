"""What the operator interfaces (Telegram, REST API, dashboard) read and act on.

One :class:`BotContext` bundles the settings, the bot's control/status/event bus, the ledger
and the market data source, and answers the questions every interface asks: status,
balance, positions, trades, profit, the current model call for a symbol, indicators across
timeframes. All numbers: USDT, base-asset qty, fractions (not percents), UTC ISO times.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from perpbot.bot.control import BotControl

#: Timeframes shown by /timeframes and the dashboard's indicator panel.
INDICATOR_TIMEFRAMES = ("5m", "15m", "1h", "4h")


def _f(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if not np.isfinite(v) else v


@dataclass
class BotContext:
    """Shared state of one bot for its interfaces.

    Args:
        settings: :class:`perpbot.config.Settings`.
        control: the running bot's control (a fresh one when the API serves a ledger alone).
        candles_source: ``callable(symbol) -> DataFrame`` of the latest closed candles of the
            settings' timeframe (validated frame; default: the settings' candles file).
        bundle: the loaded model (for ``current_signal``), or None.
    """

    settings: Any
    control: BotControl = field(default_factory=BotControl)
    candles_source: Callable[[str], pd.DataFrame] | None = None
    bundle: Any = None
    _ledger: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ------------------------------------------------------------------ storage
    @property
    def ledger(self):
        """The ledger, opened (and migrated) once; its SQLAlchemy engine is safe to share across threads."""
        with self._lock:
            if self._ledger is None:
                from perpbot.storage.ledger import Ledger

                self._ledger = Ledger(self.settings.ledger)
            return self._ledger

    def run_id(self, run_id: int | None = None) -> int | None:
        """The run to show: the given one, the bot's own run, else the latest run in the ledger."""
        if run_id is not None:
            self.ledger.get_run(run_id)  # raises UnknownRunError
            return run_id
        own = self.control.status().get("run_id")
        if own is not None:
            return int(own)
        last = self.ledger.last_run()
        return None if last is None else int(last["id"])

    # ------------------------------------------------------------------ market
    def candles(self, symbol: str | None = None) -> pd.DataFrame:
        """Latest closed candles of ``symbol`` (default: the settings' symbol)."""
        symbol = symbol or self.settings.symbol
        if symbol != self.settings.symbol:
            raise ValueError(f"symbol {symbol!r} is not traded by this bot (it trades {self.settings.symbol})")
        if self.candles_source is not None:
            return self.candles_source(symbol)
        from perpbot.data.loader import load_candles

        return load_candles(Path(self.settings.candles_file), self.settings.timeframe)

    def current_signal(self, symbol: str | None = None, window: int | None = None) -> dict[str, Any]:
        """The model's call on the latest closed candle: {symbol, time, signal (-1/0/1),
        decision (buy/sell/hold), p_down, p_flat, p_up, confidence, threshold, model_version,
        features {name: value} of a few headline features}. Raises ValueError without a model."""
        if self.bundle is None:
            raise ValueError("no trained model is loaded (run perpbot train)")
        from perpbot.features.groups import FeatureInputs, compute_groups
        from perpbot.ml.signals import proba_to_signal

        c = self.candles(symbol).iloc[-(window or self.settings.live_window):].reset_index(drop=True)
        funding = None if not self.settings.funding else self._funding()
        groups = getattr(self.bundle, "feature_groups", None) or ["candles"]  # the model's own groups
        feats = compute_groups(c, groups, FeatureInputs(funding=funding), with_funding=funding is not None)
        row = feats.iloc[[-1]]
        proba = self.bundle.predict_proba(row, c["timestamp"].iloc[[-1]])[0]
        decision = getattr(self.bundle, "decision", None) or {}
        if self.settings.decision == "ev" and getattr(self.bundle, "strategy", "ai") == "ai" and decision.get("final"):
            # the bot's own rule (expected value after costs); a model saved without EV tables
            # can only be shown with the fixed threshold
            from perpbot.strategy.signals import model_signals

            full = np.full((len(c), 3), np.nan)
            full[-1] = proba
            sig = int(model_signals(self.settings, "ai", c, full, self.bundle,
                                    None if not self.settings.funding else self._funding())[0][-1])
        else:
            sig = int(proba_to_signal(proba[None, :], self.settings.confidence_threshold)[0])
        headline = [k for k in ("rsi14", "macd_hist", "bb_pctb", "atr14_close", "ema20_ema50", "logret12")
                    if k in row.columns]
        return {"symbol": symbol or self.settings.symbol, "time": c["timestamp"].iloc[-1].isoformat(),
                "signal": sig, "decision": {1: "buy", -1: "sell", 0: "hold"}[sig],
                "p_down": _f(proba[0]), "p_flat": _f(proba[1]), "p_up": _f(proba[2]),
                "confidence": _f(max(proba[0], proba[2])), "threshold": self.settings.confidence_threshold,
                "model_version": self.bundle.version, "features": {k: _f(row[k].iloc[0]) for k in headline}}

    def _funding(self):
        from perpbot.data.loader import load_funding

        return load_funding(self.settings.funding_file) if self.settings.funding_file else None

    def indicators(self, symbol: str | None = None, timeframes=INDICATOR_TIMEFRAMES) -> dict[str, dict]:
        """EMA20, EMA50, RSI14, ATR14 (USDT) and trend (up/down) of the last closed candle per timeframe
        (:func:`perpbot.intel.analysis.indicators_from_base`, the signal bot's implementation)."""
        from perpbot.intel.analysis import indicators_from_base

        return indicators_from_base(self.candles(symbol), self.settings.timeframe, tuple(timeframes))

    # ------------------------------------------------------------------ account
    def status(self) -> dict[str, Any]:
        return self.control.status()

    def balance(self) -> dict[str, Any]:
        """{equity, starting_capital, pnl, currency} from the bot's status or the run's last equity."""
        st = self.control.status()
        equity = st.get("equity")
        rid = self.run_id()
        if equity is None and rid is not None:
            eq = self.ledger.equity(rid)
            equity = float(eq.iloc[-1]) if len(eq) else None
        cap = float(self.settings.starting_capital)
        return {"equity": _f(equity), "starting_capital": cap,
                "pnl": None if equity is None else _f(equity - cap), "currency": "USDT", "run_id": rid}

    def positions(self) -> list[dict[str, Any]]:
        """Open positions: the bot's, or every symbol's of a node over several symbols."""
        st = self.control.status()
        each = st.get("positions") if "symbols" in st else {self.settings.symbol: st.get("position")}
        return [{"symbol": sym, "side": "long" if pos["side"] > 0 else "short",
                 **{k: _f(pos.get(k)) for k in ("qty", "entry_price", "stop_loss", "take_profit",
                                                 "liquidation_price", "margin")}}
                for sym, pos in (each or {}).items() if pos and pos.get("side")]

    def trades(self, run_id: int | None = None, limit: int = 20) -> pd.DataFrame:
        rid = self.run_id(run_id)
        return pd.DataFrame() if rid is None else self.ledger.trades(rid).tail(limit)

    def profit(self, run_id: int | None = None, since: pd.Timestamp | None = None) -> dict[str, Any]:
        """{trades, wins, win_rate (fraction), pnl, fees, funding (USDT)} of the run's closed trades."""
        t = self.trades(run_id, limit=10**9)
        if since is not None and len(t):
            t = t[t["exit_time"] >= since]
        n = int(len(t))
        wins = int((t["pnl"] > 0).sum()) if n else 0
        return {"trades": n, "wins": wins, "win_rate": (wins / n) if n else None,
                "pnl": _f(t["pnl"].sum()) if n else 0.0, "fees": _f(t["fees"].sum()) if n else 0.0,
                "funding": _f(t["funding"].sum()) if n else 0.0}
