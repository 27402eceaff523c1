"""Bot events and a thread-safe, never-blocking event bus.

The trading loop publishes what happens (entries, exits, risk halts, order failures, errors,
one ``cycle`` event per candle); notifiers, the API's WebSocket and the dashboard subscribe.
:meth:`EventBus.publish` never blocks and never raises: each subscriber has a bounded queue,
and when a slow subscriber's queue is full its oldest event is dropped (and counted), so a
hanging Telegram server or a slow API client can never delay a trading cycle.
"""

from __future__ import annotations

import itertools
import queue
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

#: Event kinds the bot publishes.
EVENT_KINDS = ("entry", "exit", "risk_halt", "order_failed", "error", "cycle", "daily_summary",
               "paused", "resumed", "force_exit", "model")


@dataclass(frozen=True)
class BotEvent:
    """One event. ``time`` is UTC; ``data`` holds JSON-safe values (USDT, base qty, fractions).

    Data by kind: entry {side, qty, price, stop_loss, take_profit, liquidation_price};
    exit {trade_id, side, qty, entry_price, exit_price, reason, pnl, fees, funding}; risk_halt {event, value};
    cycle {bar, candle_time, signal, p_down, p_flat, p_up, equity, position};
    order_failed / error {message}; daily_summary {pnl, win_rate, max_drawdown, trades};
    paused / resumed / force_exit {by}; model {message} (a promoted model, :mod:`perpbot.bot.promotion`).
    """

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["time"] = self.time.isoformat()
        return d


class Subscription:
    """A subscriber's bounded queue of events (oldest dropped when full)."""

    def __init__(self, maxsize: int) -> None:
        self.queue: queue.Queue[BotEvent] = queue.Queue(maxsize=maxsize)
        self.dropped = 0

    def get(self, timeout: float | None = None) -> BotEvent | None:
        """Next event, or None after ``timeout`` seconds."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _offer(self, event: BotEvent) -> None:
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass


class EventBus:
    """Publish/subscribe between the trading loop and its observers (thread-safe)."""

    def __init__(self, history: int = 500) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._history: list[BotEvent] = []
        self._history_size = history

    def publish(self, kind: str, **data: Any) -> BotEvent:
        """Send an event to every subscriber; returns it. Never blocks, never raises."""
        event = BotEvent(kind=kind, data=data, seq=next(self._seq))
        with self._lock:
            subs = list(self._subs)
            self._history.append(event)
            del self._history[: max(0, len(self._history) - self._history_size)]
        for sub in subs:
            sub._offer(event)
        return event

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        sub = Subscription(maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def recent(self, n: int = 50, kind: str | None = None) -> list[BotEvent]:
        """The last ``n`` events (optionally of one kind), oldest first."""
        with self._lock:
            items = [e for e in self._history if kind is None or e.kind == kind]
        return items[-n:]
