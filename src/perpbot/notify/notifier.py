"""Background notifier: bot events -> Telegram / e-mail messages, off the trading loop's thread.

The trading loop only publishes on its :class:`perpbot.bot.events.EventBus` (which never
blocks). :class:`Notifier` subscribes to the bus; a dispatcher thread drains the subscription
every ``poll_interval`` s (in batches: waking once per candle would make it compete with the
loop for the GIL), renders each event (:func:`perpbot.notify.messages.render_event`; ``cycle``
events are tracked, never sent) and hands the delivery units to an asyncio loop running in a
second thread, one bounded queue and worker per channel. Failed sends are retried with exponential backoff
(``retry_base * 2**(attempt-1)`` s, capped at ``retry_cap``; a server's retry-after wins)
up to ``max_attempts``; every failure is logged with structlog (event ``notify_send_failed``,
then ``notify_gave_up``), never with a token or password. When a channel's queue is full
its oldest unit is dropped (``notify_dropped``), so a hanging server costs memory, never time.

Daily summary: on the first ``cycle`` of a new UTC day (by candle time) the notifier computes
the finished day's summary (:meth:`Notifier.daily_summary`), publishes it as a
``daily_summary`` event (so the API/WebSocket see it too) and sends it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from perpbot.logs import get_logger
from perpbot.notify.channels import Channel, default_channels, scrub
from perpbot.notify.messages import render_event
from perpbot.notify.summary import DayBook, daily_summary

log = get_logger("perpbot.notify")


class Notifier:
    """Sends bot events to ``channels`` in the background (see the module docstring).

    Args:
        settings: :class:`perpbot.config.Settings` (language, symbol, tick/lot size, timeframe).
        ctx: :class:`perpbot.bot.context.BotContext`; its ``control.events`` is subscribed and
            its ledger is read for daily summaries.
        channels: delivery channels (default: :func:`perpbot.notify.channels.default_channels`).
        max_attempts: tries per message and target (>= 1).
        retry_base, retry_cap: backoff in seconds.
        queue_size: undelivered messages kept per channel (oldest dropped beyond).
        poll_interval: seconds between two drains of the event subscription.
    """

    def __init__(self, settings: Any, ctx: Any, channels: list[Channel] | None = None, *,
                 max_attempts: int = 5, retry_base: float = 1.0, retry_cap: float = 60.0,
                 queue_size: int = 1000, poll_interval: float = 0.05) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts {max_attempts} must be >= 1")
        self.settings, self.ctx = settings, ctx
        self.channels = list(default_channels(settings) if channels is None else channels)
        self.max_attempts, self.retry_base, self.retry_cap = max_attempts, retry_base, retry_cap
        self.queue_size, self.poll_interval = queue_size, poll_interval
        self.book = DayBook()
        self.stats = {"sent": 0, "failed": 0, "dropped": 0, "retries": 0}
        self._pending = 0
        self._handled_seq = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._sub = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[int, asyncio.Queue] = {}
        self._workers: list[asyncio.Task] = []
        self._threads: list[threading.Thread] = []
        self._executor: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._sub is not None and not self._stop.is_set()

    def start(self) -> "Notifier":
        """Subscribe to the event bus and start the background threads (idempotent)."""
        if self._sub is not None:
            return self
        bus = self.ctx.control.events
        self._sub = bus.subscribe(maxsize=100_000)
        earlier = bus.recent(1)  # events before the subscription are not ours to wait for
        self._handled_seq = earlier[-1].seq if earlier else 0
        self._loop = asyncio.new_event_loop()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notify-io")
        self._loop.set_default_executor(self._executor)
        ready = threading.Event()
        loop_thread = threading.Thread(target=self._run_loop, args=(ready,), name="notify-loop", daemon=True)
        loop_thread.start()
        ready.wait(5)
        dispatch = threading.Thread(target=self._dispatch, name="notify-dispatch", daemon=True)
        dispatch.start()
        self._threads = [dispatch, loop_thread]
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads; undelivered messages are abandoned (call :meth:`wait_idle` first to drain)."""
        if self._sub is None or self._stop.is_set():
            return
        self._stop.set()
        self._threads[0].join(timeout)
        loop = self._loop
        if loop is not None and loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                fut.result(timeout)
            except Exception as exc:  # noqa: BLE001 - shutdown must finish
                log.warning("notify_shutdown_error", error=self._scrub(repr(exc)))
            loop.call_soon_threadsafe(loop.stop)
        self._threads[1].join(timeout)
        if loop is not None and not loop.is_running():
            loop.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.ctx.control.events.unsubscribe(self._sub)
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> "Notifier":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pending(self) -> int:
        """Messages queued or being sent (all channels and targets)."""
        with self._cond:
            return self._pending

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every event published so far is handled and every message sent or given up."""
        return self._wait(timeout, sent=True)

    def wait_dispatched(self, timeout: float = 10.0) -> bool:
        """Wait until every event published so far is handled: its messages queued (:attr:`pending`), not
        necessarily sent. False when ``timeout`` (s) passed first."""
        return self._wait(timeout, sent=False)

    def _wait(self, timeout: float, sent: bool) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._sub is not None and not self._stop.is_set():
                last = self.ctx.control.events.recent(1)
                if (self._pending == 0 or not sent) and (not last or self._handled_seq >= last[-1].seq):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # ------------------------------------------------------------------ daily summary
    def daily_summary(self, day: Any, run_id: int | None = None) -> dict[str, Any]:
        """See :func:`perpbot.notify.summary.daily_summary` (with this notifier's tracked days)."""
        return daily_summary(self.ctx, day, self.book, run_id)

    def send_daily_summary(self, day: Any, run_id: int | None = None) -> dict[str, Any]:
        """Compute :meth:`daily_summary`, publish it as a ``daily_summary`` event and send it.

        Raises:
            RuntimeError: the notifier is not started. ValueError: ``day`` is not a date.
        """
        if not self.running:
            raise RuntimeError("the notifier is not started (call Notifier.start())")
        summary = self.daily_summary(day, run_id)
        self.ctx.control.events.publish("daily_summary", **summary)
        return summary

    # ------------------------------------------------------------------ dispatcher thread
    def _dispatch(self) -> None:
        # Poll and drain in batches instead of waking per event: a woken thread asks for the GIL,
        # and one hand-over per candle would cost the trading loop time on a busy machine.
        while not self._stop.is_set():
            batch = []
            while len(batch) < 10_000 and (ev := self._sub.get(timeout=0)) is not None:
                batch.append(ev)
            for ev in batch:
                try:
                    self._handle(ev.kind, ev.data)
                except Exception as exc:  # noqa: BLE001 - one bad event must not stop notifications
                    log.error("notify_event_error", kind=ev.kind, error=self._scrub(repr(exc)))
            with self._cond:
                if batch:
                    self._handled_seq = max(self._handled_seq, batch[-1].seq)
                self._cond.notify_all()
            self._stop.wait(self.poll_interval)

    def _handle(self, kind: str, data: dict) -> None:
        if kind == "cycle":
            finished = self.book.on_cycle(data)
            if finished is not None:
                self.send_daily_summary(finished)
            return
        if kind == "exit":
            self.book.on_exit(data)
        note = render_event(kind, data, self.settings)
        if note is None:
            return
        for i, ch in enumerate(self.channels):
            if note.kind not in ch.kinds:
                continue
            for unit in ch.units(note):
                with self._cond:
                    self._pending += 1
                self._loop.call_soon_threadsafe(self._put, i, unit)

    # ------------------------------------------------------------------ asyncio thread
    def _run_loop(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        for i, _ in enumerate(self.channels):
            self._queues[i] = asyncio.Queue(maxsize=self.queue_size)
            self._workers.append(self._loop.create_task(self._worker(i)))
        self._loop.call_soon(ready.set)
        self._loop.run_forever()

    def _done(self, n: int = 1) -> None:
        with self._cond:
            self._pending -= n
            self._cond.notify_all()

    def _put(self, i: int, unit: Any) -> None:
        q = self._queues[i]
        if q.full():
            q.get_nowait()
            self.stats["dropped"] += 1
            self._done()
            if self.stats["dropped"] % 100 == 1:  # the first drop, then every 100th
                log.warning("notify_dropped", channel=self.channels[i].name, queue_size=self.queue_size,
                            dropped_total=self.stats["dropped"])
        q.put_nowait(unit)

    async def _worker(self, i: int) -> None:
        q = self._queues[i]
        while True:
            unit = await q.get()
            try:
                await self._deliver(self.channels[i], unit)
            finally:
                self._done()

    async def _deliver(self, ch: Channel, unit: Any) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                await ch.send_unit(unit)
                self.stats["sent"] += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is logged and maybe retried
                permanent = ch.is_permanent(exc)
                error = self._scrub(f"{type(exc).__name__}: {exc}")
                log.warning("notify_send_failed", channel=ch.name, target=str(unit[0]), attempt=attempt,
                            max_attempts=self.max_attempts, permanent=permanent, error=error)
                if permanent or attempt == self.max_attempts:
                    self.stats["failed"] += 1
                    log.error("notify_gave_up", channel=ch.name, target=str(unit[0]), attempts=attempt, error=error)
                    return
                self.stats["retries"] += 1
                delay = min(self.retry_cap, self.retry_base * 2 ** (attempt - 1))
                await asyncio.sleep(max(delay, ch.retry_after(exc) or 0.0))

    async def _shutdown(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for q in self._queues.values():
            while not q.empty():
                q.get_nowait()
        for ch in self.channels:
            try:
                await asyncio.wait_for(ch.close(), 3.0)
            except Exception as exc:  # noqa: BLE001
                log.warning("notify_close_error", channel=ch.name, error=self._scrub(repr(exc)))
        with self._cond:
            self._pending = 0

    def _scrub(self, text: str) -> str:
        secrets = [s for ch in self.channels for s in ch.secrets()]
        return scrub(text, *secrets)
