"""The paper bot's ledger writes: one transaction per cycle that has something to record,
always with the checkpoint of the simulated account, and no row ever dropped.

Every cycle's rows (trades with their orders and fills, risk events, funding payments,
position snapshots, equity, predictions) are buffered. They are written in ONE transaction,
together with the run's checkpoint (:func:`make_checkpoint`), in a cycle that closed a
trade, raised a risk event, paid funding or changed the position, and otherwise every
``flush_every`` cycles. So the ledger is always exactly the run up to its checkpoint's candle,
and ``perpbot run --mode paper --resume`` continues from there without a gap or a duplicate.

A write that fails (after the ledger's own retries of a locked database) never stops the
bot: the rows stay buffered and go with the next write (tried again after a pause that
doubles from :data:`RETRY_AFTER_S` up to :data:`RETRY_AFTER_MAX_S` seconds), the failure is
counted in the status (``errors``, ``last_error``, ``ledger_pending`` rows not yet written),
logged, and announced once per streak with an ``error`` event. Only :meth:`PaperRecorder.write` with
``final=True`` (the end of the replay) raises when the rows still cannot be written.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from perpbot.logs import get_logger

log = get_logger("perpbot.bot")

#: Layout version of the checkpoint JSON (bump when its meaning changes).
CHECKPOINT_VERSION = 4  # 2: a resting limit entry; 3: a portfolio budget; 4: the position's leverage
#: After a failed write the next one is tried this many seconds later, doubling per failure ...
RETRY_AFTER_S = 1.0
#: ... up to this.
RETRY_AFTER_MAX_S = 30.0


def encode_floats(values: np.ndarray) -> list[float | str]:
    """Floats for JSON, exactly: finite values as numbers, NaN / ±inf as "nan" / "inf" / "-inf"."""
    return [float(v) if math.isfinite(v) else repr(float(v)) for v in np.asarray(values, dtype=np.float64)]


def decode_floats(values: list[float | str]) -> np.ndarray:
    """Inverse of :func:`encode_floats` (float64 array)."""
    return np.array([float(v) for v in values], dtype=np.float64)


def signal_settings(settings) -> dict[str, Any]:
    """The settings besides the simulator's parameters that decide a paper run's signals."""
    return {"timeframe": settings.timeframe, "live_window": int(settings.live_window),
            "atr_period": int(settings.atr_period), "warmup_bars": int(settings.warmup_bars),
            "confidence_threshold": float(settings.confidence_threshold), "funding": bool(settings.funding)}


def make_checkpoint(bot, *, closed: bool = False) -> dict[str, Any]:
    """The paper account after its latest candle: {version, strategy, bars (candles
    processed), candle_time (UTC ISO open time of the last one), state (kernel state
    vector), signal (decided at that candle, acts at the next open), atr (USDT, at that
    close), params (simulator parameters), settings (:func:`signal_settings`), closed (the
    end-of-replay close was recorded)}."""
    ex = bot.exchange
    n = ex.n
    return {"version": CHECKPOINT_VERSION, "strategy": bot.strategy, "bars": n,
            "candle_time": pd.Timestamp(int(ex.ts[n - 1]), unit="ms", tz="UTC").isoformat() if n else None,
            "state": encode_floats(ex.state), "signal": int(ex.signal[n - 1]) if n else 0,
            "atr": encode_floats(ex.atr[n - 1:n])[0] if n else None,
            "params": encode_floats(ex.params), "settings": signal_settings(bot.settings), "closed": closed}


class PaperRecorder:
    """Buffers one paper run's rows and writes them with its checkpoint (module docstring)."""

    def __init__(self, ledger, run_id: int, control, flush_every: int = 100) -> None:
        self.ledger, self.run_id, self.control = ledger, run_id, control
        self.flush_every = max(1, int(flush_every))
        self.trades: list[pd.DataFrame] = []
        self.risk_events: list[pd.DataFrame] = []
        self.funding: list[pd.DataFrame] = []
        self.positions: list[dict] = []
        self.equity: list[tuple] = []
        self.predictions: list[dict] = []
        self.urgent = False
        self.failures = 0  # consecutive failed writes
        self.next_attempt = 0.0  # time.monotonic() before which no write is tried after a failure
        self.replace_equity: tuple | None = None  # a corrected equity row already written once

    def add(self, update, equity_row: tuple, prediction: dict | None, position: dict | None) -> None:
        """Buffer one cycle: its :class:`perpbot.exchange.simulated.BarUpdate`, equity row
        (close time, equity USDT, signed position qty), prediction row and position snapshot."""
        for buf, frame in ((self.trades, update.trades), (self.risk_events, update.risk_events),
                           (self.funding, update.funding)):
            if len(frame):
                buf.append(frame)
                self.urgent = True
        if position is not None:
            self.positions.append(position)
            self.urgent = True
        self.equity.append(equity_row)
        if prediction is not None:
            self.predictions.append(prediction)

    @property
    def due(self) -> bool:
        """Something must be written (and no failed write is pausing the writes)."""
        if self.failures and time.monotonic() < self.next_attempt:
            return False
        return self.urgent or len(self.equity) >= self.flush_every

    def pending(self) -> int:
        """Rows buffered and not yet written."""
        return (sum(len(f) for f in self.trades + self.risk_events + self.funding) + len(self.positions)
                + len(self.equity) + len(self.predictions) + (self.replace_equity is not None))

    def correct_last_equity(self, row: tuple) -> None:
        """Replace the latest equity row (the end-of-replay close changes the last candle's equity)."""
        if self.equity:
            self.equity[-1] = row
        else:
            self.replace_equity = row

    def write(self, checkpoint: dict, *, final: bool = False) -> bool:
        """Write every buffered row and ``checkpoint`` in one transaction. Returns True when
        written; False (rows kept, failure reported) when the ledger refused, except with
        ``final``, which raises the error."""
        def frame(parts: list[pd.DataFrame]) -> pd.DataFrame | None:
            return pd.concat(parts, ignore_index=True) if parts else None

        equity = list(self.equity)
        if self.replace_equity is not None:
            equity = [self.replace_equity] + equity
        try:
            self.ledger.record_run_bulk(
                self.run_id, trades=frame(self.trades), risk_events=frame(self.risk_events),
                funding=frame(self.funding),
                equity=pd.DataFrame(equity, columns=["time", "equity", "position_qty"]) if equity else None,
                predictions=pd.DataFrame(self.predictions) if self.predictions else None,
                positions=pd.DataFrame(self.positions) if self.positions else None,
                checkpoint=checkpoint, replace_equity=self.replace_equity is not None)
        except Exception as exc:  # any ledger failure: keep every row, report, go on
            self._failed(exc)
            if final:
                raise
            return False
        for buf in (self.trades, self.risk_events, self.funding, self.positions, self.equity, self.predictions):
            buf.clear()
        self.urgent, self.replace_equity = False, None
        if self.failures:
            log.info("ledger_write_recovered", run_id=self.run_id, after_failures=self.failures)
            self.failures = 0
            self.control.update_status(ledger_pending=0)
        return True

    def _failed(self, exc: Exception) -> None:
        orig = getattr(exc, "orig", None)
        reason = (str(orig) if orig is not None else str(exc)).strip().splitlines()
        message = (f"ledger write failed, {self.pending()} rows kept for the next write: "
                   f"{type(orig or exc).__name__}: {reason[0] if reason else ''}")
        st = self.control.status()
        self.control.update_status(errors=int(st.get("errors") or 0) + 1, last_error=message,
                                   ledger_pending=self.pending())
        log.error("ledger_write_failed", run_id=self.run_id, pending=self.pending(), error=message)
        if self.failures == 0:
            self.control.events.publish("error", message=message)
        self.failures += 1
        self.next_attempt = time.monotonic() + min(RETRY_AFTER_MAX_S, RETRY_AFTER_S * 2 ** (self.failures - 1))
