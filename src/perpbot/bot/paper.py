"""The bot loop in paper mode: closed candles in, one decision per candle, simulated fills.

Each cycle (one closed candle):

1. the simulated exchange processes the candle (fills at its open of the previous decision,
   funding, stops, liquidation) — the same compiled loop as the backtester;
2. the bot appends the candle to its trailing window (``live_window`` candles), computes the
   strategy's signal on that window only (features -> model -> threshold for ``ai``; the rule
   for the baselines) and hands it to the exchange for the next open;
3. trades (with their orders and fills), risk events, funding payments, position snapshots,
   the prediction and an equity snapshot go to the ledger with the account's checkpoint
   (:mod:`perpbot.bot.paper_ledger`: one transaction per cycle that has something to record,
   else every ``flush_every`` cycles; a failed write never stops the bot and loses no row),
   and one structured log line records the cycle.

With ``--replay FILE`` the candles come from a Parquet file; replaying recorded candles gives
the same trades as the backtest on the same data and model (tests/test_paper_parity.py). A
replay whose process died continues from its checkpoint (:meth:`PaperBot.restore`), with the
same trades as an uninterrupted replay.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perpbot.backtest.engine import SimConfig
from perpbot.bot.control import BotControl
from perpbot.bot.paper_ledger import CHECKPOINT_VERSION, PaperRecorder, decode_floats, make_checkpoint, signal_settings
from perpbot.data import timeframe_to_ms
from perpbot.exchange.simulated import SimulatedExchange, trailing_atr
from perpbot.logs import get_logger
from perpbot.strategy.signals import (
    BASELINES, baseline_overrides, check_model_decision, is_model_strategy, meta_primary, model_signals,
    rule_signals,
)

log = get_logger("perpbot.bot")


class ReplayInterrupted(Exception):
    """Raised from a replay's progress callback to stop it early; the run is left ``abandoned``
    (resumable with ``perpbot run --mode paper --resume``), not ``failed``."""


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
        last = self.bundle.predict_proba(feats.iloc[[-1]], frame["timestamp"].iloc[[-1]])[0]
        proba = np.full((len(frame), 3), np.nan)
        proba[-1] = last
        signal, size, _ = model_signals(self.settings, self.strategy, frame, proba, self.bundle, self.funding)
        if size is not None:
            self.size = float(size[-1])
        return int(signal[-1]), last


@dataclass
class Decision:
    """One cycle's outcome: the bar, its signal and (AI) probabilities (p_down, p_flat, p_up)."""

    time: pd.Timestamp
    bar: int
    signal: int
    proba: np.ndarray | None


class PaperBot:
    """Drives a :class:`SimulatedExchange` with one strategy, candle by candle.

    Args:
        settings: :class:`perpbot.config.Settings`.
        strategy: "ai" (needs ``bundle``) or a baseline name.
        bundle: a loaded :class:`perpbot.ml.registry.ModelBundle` for "ai".
        funding / mark: funding-rate events and mark candles (paper: from files; live: exchange).
        ledger / run_id: where to record the run (None: record nothing).
        flush_every: equity snapshots and predictions are written every this many candles
            (trades, orders, fills, risk events, funding and position changes are written in the
            cycle they happen, with the buffered snapshots; see :mod:`perpbot.bot.paper_ledger`).
    """

    def __init__(self, settings, strategy: str, *, bundle=None, funding: pd.DataFrame | None = None,
                 mark: pd.DataFrame | None = None, ledger=None, run_id: int | None = None,
                 flush_every: int = 100, control: BotControl | None = None, series: dict | None = None) -> None:
        self.signals = SignalEngine(settings, strategy, bundle=bundle, funding=funding, mark=mark, series=series)
        self.settings = settings
        self.strategy = strategy
        self.bundle = bundle
        self.funding = self.signals.funding
        config = SimConfig.from_settings(settings)
        if strategy in BASELINES:
            config = SimConfig(**{**config.__dict__, **baseline_overrides(strategy)})
        self.exchange = SimulatedExchange(config, settings.timeframe, self.funding, mark)
        self.window: deque = self.signals.window
        self.ledger = ledger
        self.run_id = run_id
        self.flush_every = max(1, flush_every)
        self._bar = pd.Timedelta(milliseconds=timeframe_to_ms(settings.timeframe))
        self.resumed_at: int | None = None  # candles already in the ledger when restored
        self._last_position = (0, 0.0, 0.0)
        self.decisions: list[Decision] = []
        self.latency_ms: list[float] = []
        self.control = control or BotControl(mode="paper", strategy=strategy, symbol=settings.symbol,
                                             timeframe=settings.timeframe)
        self.events = self.control.events
        self.recorder = PaperRecorder(ledger, run_id, self.control, flush_every) if ledger is not None else None
        self.control.update_status(running=True, run_id=run_id)

    # ------------------------------------------------------------------------------------------
    def on_candle(self, ts: pd.Timestamp, o: float, h: float, lo: float, c: float, v: float) -> Decision:
        """Run one cycle for a closed candle (UTC open time, USDT prices, base volume)."""
        t0 = time.perf_counter()
        frame = self.signals.push(ts, o, h, lo, c, v)
        atr = self.signals.atr(frame)
        update = self.exchange.on_candle(ts, o, h, lo, c, atr)
        bar = update.bar
        if self.control.take_force_exit():
            forced = self.exchange.close_all(manual=True)
            update.trades = pd.concat([update.trades, forced.trades], ignore_index=True) if len(
                update.trades) else forced.trades
            update.equity, update.position = forced.equity, forced.position
        signal, proba = 0, None
        if bar + 1 >= self.settings.warmup_bars:
            signal, proba = self._decide(frame)
        if self.control.paused:
            signal = 0  # no new positions; stops and take-profits stay active
        self.exchange.set_signal(signal, self.signals.size)
        decision = Decision(ts, bar, signal, proba)
        self.decisions.append(decision)
        self.latency_ms.append((time.perf_counter() - t0) * 1e3)
        self._record(update, decision)
        self._publish(update, decision)
        return decision

    def _publish(self, update, decision: Decision) -> None:
        ev = self.events
        for t in (update.trades.itertuples() if len(update.trades) else ()):
            if t.entry_bar == decision.bar:  # opened (and closed) within this candle: its entry comes first
                ev.publish("entry", side="long" if t.side > 0 else "short", qty=float(t.qty),
                           price=float(t.entry_price), stop_loss=float(t.stop_loss),
                           take_profit=float(t.take_profit), liquidation_price=float(t.liquidation_price))
            ev.publish("exit", trade_id=int(t.trade_id), side="long" if t.side > 0 else "short", qty=float(t.qty),
                       entry_price=float(t.entry_price), exit_price=float(t.exit_price), reason=t.exit_reason,
                       pnl=float(t.pnl), fees=float(t.fees), funding=float(t.funding))
        pos = self.exchange.position
        if pos["side"] != 0 and pos["entry_bar"] == decision.bar:
            ev.publish("entry", side="long" if pos["side"] > 0 else "short", qty=pos["qty"],
                       price=pos["entry_price"], stop_loss=pos["stop_loss"], take_profit=pos["take_profit"],
                       liquidation_price=pos["liquidation_price"])
        for e in (update.risk_events.itertuples() if len(update.risk_events) else ()):
            if e.event in ("daily_loss_halt", "max_drawdown_halt"):
                ev.publish("risk_halt", event=e.event, value=float(e.value))
        p = decision.proba
        last = {"signal": decision.signal, "time": decision.time.isoformat(),
                "p_down": None if p is None else float(p[0]), "p_flat": None if p is None else float(p[1]),
                "p_up": None if p is None else float(p[2])}
        ev.publish("cycle", bar=decision.bar, candle_time=decision.time.isoformat(), equity=update.equity,
                   position=update.position, **{k: v for k, v in last.items() if k != "time"})
        st = self.control.status()
        self.control.update_status(position=pos if pos["side"] != 0 else None, equity=update.equity,
                                   last_signal=last, last_candle_time=decision.time.isoformat(),
                                   last_cycle_time=pd.Timestamp.now(tz="UTC").isoformat(),
                                   cycles=st.get("cycles", 0) + 1)

    def _decide(self, frame: pd.DataFrame) -> tuple[int, np.ndarray | None]:
        return self.signals.decide(frame)

    # ------------------------------------------------------------------------------------------
    def _record(self, update, decision: Decision) -> None:
        pos = self.exchange.position
        log.info("cycle", bar=decision.bar, time=str(decision.time), strategy=self.strategy,
                 signal=decision.signal,
                 p_up=None if decision.proba is None else round(float(decision.proba[2]), 4),
                 p_down=None if decision.proba is None else round(float(decision.proba[0]), 4),
                 equity=round(update.equity, 4), position=pos["side"] * pos["qty"])
        for t in (update.trades.itertuples() if len(update.trades) else ()):
            log.info("trade", trade_id=t.trade_id, side=t.side, qty=t.qty, entry=t.entry_price, exit=t.exit_price,
                     reason=t.exit_reason, pnl=round(t.pnl, 4))
        for e in (update.risk_events.itertuples() if len(update.risk_events) else ()):
            log.info("risk_event", bar=e.bar, risk_event=e.event, value=e.value)
        snapshot = None
        key = (pos["side"], pos["qty"], pos["entry_price"] if pos["side"] else 0.0)
        if key != self._last_position:
            self._last_position = key
            log.info("position", side=pos["side"], qty=pos["qty"], entry=pos["entry_price"],
                     stop_loss=pos["stop_loss"], take_profit=pos["take_profit"],
                     liquidation_price=pos["liquidation_price"])
            close = float(self.window[-1][4])
            upnl = pos["side"] * pos["qty"] * (close - pos["entry_price"]) if pos["side"] else 0.0
            nan_none = {k: (None if not np.isfinite(pos[k]) else pos[k]) if pos["side"] else None
                        for k in ("entry_price", "stop_loss", "take_profit", "liquidation_price", "margin")}
            snapshot = dict(time=decision.time + self._bar, side=pos["side"], qty=pos["qty"], mark_price=close,
                            unrealized_pnl=upnl, **nan_none)
        if self.recorder is None:
            return
        prediction = None
        if decision.proba is not None and decision.signal != 0:
            p = decision.proba
            prediction = dict(time=decision.time, bar=decision.bar, p_down=p[0], p_flat=p[1], p_up=p[2],
                              confidence=max(p[0], p[2]), signal=decision.signal,
                              decision="buy" if decision.signal > 0 else "sell",
                              model_version=self.bundle.version, features_hash=self.bundle.features_hash)
        self.recorder.add(update, (decision.time + self._bar, update.equity, update.position), prediction, snapshot)
        if self.recorder.due:
            self.recorder.write(make_checkpoint(self))

    def flush(self, final: bool = False) -> bool:
        """Write every buffered row with the checkpoint (one transaction). True when written
        (or nothing to write); False when the ledger refused (rows kept, status ``errors``
        counted); with ``final`` a refusal raises."""
        if self.recorder is None or not self.recorder.pending():
            return True
        return self.recorder.write(make_checkpoint(self), final=final)

    def finish(self) -> None:
        """End of the replay: close any open position at the last close and write the rest to
        the ledger (raises if the ledger still refuses it; see :meth:`flush`)."""
        update = self.exchange.close_all()
        self.control.update_status(running=False)
        if self.recorder is None:
            return
        if len(update.trades):
            self.recorder.trades.append(update.trades)
        if len(update.trades):  # the close changed the last candle's equity (and left no position)
            last_open = pd.Timestamp(int(self.exchange.ts[self.exchange.n - 1]), unit="ms", tz="UTC")
            self.recorder.correct_last_equity((last_open + self._bar, update.equity, 0.0))
        self.recorder.write(make_checkpoint(self, closed=True), final=True)

    # ------------------------------------------------------------------------------------------
    def restore(self, checkpoint: dict, candles: pd.DataFrame) -> int:
        """Continue a recorded run from its ``checkpoint`` (see
        :func:`perpbot.bot.paper_ledger.make_checkpoint`): ``candles`` are the replay's
        candles from its first one (at least through the checkpoint's candle). Restores the
        account (balance, position with its stops, risk limits, pending signal) and the
        trailing window; returns the number of candles already done (the next index to feed).

        Raises ValueError when the checkpoint does not belong to this strategy, these settings
        or these candles (nothing is changed then).
        """
        cp = checkpoint or {}
        if cp.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"the run's checkpoint has layout {cp.get('version')!r}, this version reads "
                             f"{CHECKPOINT_VERSION}")
        if cp.get("strategy") != self.strategy:
            raise ValueError(f"the run replayed strategy {cp.get('strategy')!r}, not {self.strategy!r}")
        wanted = signal_settings(self.settings)
        diff = sorted(k for k in wanted if cp["settings"].get(k) != wanted[k])
        if diff:
            raise ValueError("settings differ from the run's: " + ", ".join(
                f"{k} {cp['settings'].get(k)!r} -> {wanted[k]!r}" for k in diff))
        params = decode_floats(cp["params"])
        if params.shape != self.exchange.params.shape or not np.array_equal(params, self.exchange.params,
                                                                            equal_nan=True):
            raise ValueError("the account / risk settings (leverage, fees, stops, limits ...) differ from the run's")
        bars = int(cp["bars"])
        stamps = candles["timestamp"]
        if not 0 < bars <= len(candles) or pd.Timestamp(stamps.iloc[bars - 1]) != pd.Timestamp(cp["candle_time"]):
            raise ValueError(f"the run's last recorded candle ({cp['candle_time']}, number {bars}) is not in "
                             f"these candles at that place")
        done = candles.iloc[:bars]
        self.exchange.restore(decode_floats(cp["state"]), done, float(cp["atr"]), int(cp["signal"]))
        for r in done.iloc[-self.signals.window.maxlen:].itertuples(index=False):
            self.signals.window.append((r.timestamp, float(r.open), float(r.high), float(r.low), float(r.close),
                                        float(r.volume)))
        pos = self.exchange.position
        self._last_position = (pos["side"], pos["qty"], pos["entry_price"] if pos["side"] else 0.0)
        self.resumed_at = bars
        self.control.update_status(cycles=bars, equity=self.exchange.equity,
                                   position=pos if pos["side"] != 0 else None,
                                   last_candle_time=pd.Timestamp(cp["candle_time"]).isoformat())
        return bars
