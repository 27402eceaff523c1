"""Operator control of a running bot: pause / resume / force-exit, and its status snapshot.

Shared (thread-safe) between the trading loop and the operator interfaces (Telegram, REST
API, dashboard). The loop reads the flags at the start of each cycle: while paused it opens
no new positions (stops and take-profits stay active); a force-exit request closes the open
position at the latest close in the next cycle.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from perpbot.bot.events import EventBus


class BotControl:
    """Flags set by operators and the status the loop publishes after every cycle."""

    def __init__(self, events: EventBus | None = None, *, mode: str = "paper", strategy: str = "ai",
                 symbol: str = "SOL/USDT:USDT", timeframe: str = "5m") -> None:
        self.events = events or EventBus()
        self._lock = threading.Lock()
        self._paused = False
        self._force_exit = False
        self._status: dict[str, Any] = {"mode": mode, "strategy": strategy, "symbol": symbol,
                                        "timeframe": timeframe, "paused": False, "running": False,
                                        "position": None, "equity": None, "last_signal": None,
                                        "last_cycle_time": None, "last_candle_time": None, "cycles": 0,
                                        "errors": 0, "run_id": None}

    # ---- operator side ------------------------------------------------------------------
    def pause(self, by: str = "operator") -> None:
        with self._lock:
            changed = not self._paused
            self._paused = True
            self._status["paused"] = True
        if changed:
            self.events.publish("paused", by=by)

    def resume(self, by: str = "operator") -> None:
        with self._lock:
            changed = self._paused
            self._paused = False
            self._status["paused"] = False
        if changed:
            self.events.publish("resumed", by=by)

    def request_force_exit(self, by: str = "operator") -> None:
        with self._lock:
            self._force_exit = True
        self.events.publish("force_exit", by=by)

    # ---- loop side ----------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused

    def take_force_exit(self) -> bool:
        """True once per request (the loop consumes it)."""
        with self._lock:
            flag, self._force_exit = self._force_exit, False
            return flag

    def update_status(self, **fields: Any) -> None:
        with self._lock:
            self._status.update(fields)
            self._status["updated_at"] = datetime.now(timezone.utc).isoformat()

    def status(self) -> dict[str, Any]:
        """A copy of the status: mode, strategy, symbol, paused, running, position (dict or None),
        equity (USDT), last_signal {signal, p_down, p_flat, p_up, time}, last_cycle_time, cycles, errors."""
        with self._lock:
            return dict(self._status)
