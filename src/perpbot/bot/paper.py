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

from perpbot.sim.config import AccountConfig
from perpbot.bot.control import BotControl
from perpbot.bot.recorder import cycle_status, last_signal, publish_cycle, publish_fills
from perpbot.bot.promotion import ModelInbox, promote_now
from perpbot.bot.paper_ledger import CHECKPOINT_VERSION, PaperRecorder, decode_floats, make_checkpoint, signal_settings
from perpbot.data import timeframe_to_ms
from perpbot.exchange.simulated import SimulatedExchange
from perpbot.logs import get_logger
from perpbot.strategy.engine import SignalEngine

log = get_logger("perpbot.bot")


class ReplayInterrupted(Exception):
    """Raised from a replay's progress callback to stop it early; the run is left ``abandoned``
    (resumable with ``perpbot run --mode paper --resume``), not ``failed``."""


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
        keep_last: how many of the latest decisions and latencies to keep in memory (None: all;
            a node that runs for months keeps a window).
    """

    def __init__(self, settings, strategy: str, *, bundle=None, funding: pd.DataFrame | None = None,
                 mark: pd.DataFrame | None = None, ledger=None, run_id: int | None = None,
                 flush_every: int = 100, control: BotControl | None = None, series: dict | None = None,
                 keep_last: int | None = None) -> None:
        self.signals = SignalEngine(settings, strategy, bundle=bundle, funding=funding, mark=mark, series=series)
        self.settings = settings
        self.strategy = strategy
        self.bundle = bundle
        self.funding = self.signals.funding
        config = AccountConfig.for_strategy(settings, strategy)
        self.exchange = SimulatedExchange(config, settings.timeframe, self.funding, mark)
        self.window: deque = self.signals.window
        self.ledger = ledger
        self.run_id = run_id
        self.flush_every = max(1, flush_every)
        self._bar = pd.Timedelta(milliseconds=timeframe_to_ms(settings.timeframe))
        self.resumed_at: int | None = None  # candles already in the ledger when restored
        self._last_position = (0, 0.0, 0.0)
        # a replay keeps every decision (parity checks read them all); a node on live prices the last ``keep_last``
        self.decisions: deque[Decision] = deque(maxlen=keep_last)
        self.latency_ms: deque[float] = deque(maxlen=keep_last)
        self.control = control or BotControl(mode="paper", strategy=strategy, symbol=settings.symbol,
                                             timeframe=settings.timeframe)
        self.events = self.control.events
        self.recorder = PaperRecorder(ledger, run_id, self.control, flush_every) if ledger is not None else None
        self.inbox: ModelInbox | None = None  # dry-run: `perpbot models promote` swaps the model
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
        promote_now(self, ts, bar)  # a promoted model (live prices) decides from this candle on
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
        pos = self.exchange.position
        publish_fills(ev, update.trades, pos, update.risk_events, decision.bar)
        last = last_signal(decision.signal, decision.time, decision.proba)
        publish_cycle(ev, decision.bar, decision.time, update.equity, update.position, last)
        cycle_status(self.control, position=pos if pos["side"] != 0 else None, equity=update.equity, last=last,
                     candle_time=decision.time, cycles=self.control.status().get("cycles", 0) + 1)

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
        try:
            if self.recorder is None:
                return
            if len(update.trades):
                self.recorder.trades.append(update.trades)
            if len(update.trades):  # the close changed the last candle's equity (and left no position)
                last_open = pd.Timestamp(int(self.exchange.ts[self.exchange.n - 1]), unit="ms", tz="UTC")
                self.recorder.correct_last_equity((last_open + self._bar, update.equity, 0.0))
            self.recorder.write(make_checkpoint(self, closed=True), final=True)
        finally:  # "stopped" only once the ledger holds every row (a reader then sees the final equity)
            self.control.update_status(running=False, equity=update.equity, position=None)

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
