"""Background refresh of the micro-metrics: keeps the N most recently asked symbols fresh.

:class:`MicroRefresher` remembers the last ``max_symbols`` symbols asked for (:meth:`touch`,
:meth:`ensure`; the least recently asked one is dropped, its history forgotten) and, in an
asyncio task (:meth:`start` / :meth:`stop`), every ``interval`` seconds fetches each one's new
closed 1-minute candles into the :class:`~perpbot.intel.micro.MicroMetrics`, then lets it save
(at most every ``save_interval``). ``fetch(symbol, since_ms, limit)`` is injected and returns
ccxt OHLCV rows ``[open ms, o, h, l, c, v]`` oldest first (e.g.
:meth:`perpbot.intel.venue.VenueClient.ohlcv_1m`); the candle still forming (open + 1 min >
now) is dropped. After a pause it pages forward until it reaches the present (at most
retention / limit + 2 pages per symbol and refresh). One failing symbol does not stop the
others: its error is logged and kept in :attr:`MicroRefresher.errors`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from perpbot.intel.micro import MINUTE_MS, MicroMetrics, MicroSnapshot
from perpbot.logs import get_logger

__all__ = ["Fetch1m", "MicroRefresher"]

log = get_logger("perpbot.intel")
Fetch1m = Callable[[str, int | None, int], Awaitable[Sequence[Sequence[Any]]]]


def _now_ms() -> int:
    return int(time.time() * 1000)


class MicroRefresher:
    """Keeps the micro-metrics of recently asked symbols fresh (module docstring).

    Args:
        metrics: the store to fill.
        fetch: ``async fetch(symbol, since_ms, limit) -> rows``.
        interval: seconds between two refresh rounds.
        max_symbols: symbols kept fresh (the most recently asked).
        timeout: seconds one fetch may take.
        limit: candles asked per fetch.
        now_ms: wall clock, ms UTC (tests replay a fixed clock).
    """

    def __init__(self, metrics: MicroMetrics, fetch: Fetch1m, *, interval: float = 60.0, max_symbols: int = 20,
                 timeout: float = 10.0, limit: int = 200, now_ms: Callable[[], int] = _now_ms) -> None:
        if interval <= 0 or max_symbols < 1 or timeout <= 0 or limit < 1:
            raise ValueError("interval > 0, max_symbols >= 1, timeout > 0 and limit >= 1 are required")
        self.metrics = metrics
        self.fetch = fetch
        self.interval = float(interval)
        self.max_symbols = int(max_symbols)
        self.timeout = float(timeout)
        self.limit = int(limit)
        self.now_ms = now_ms
        self.errors: dict[str, str] = {}
        self.rounds = 0
        self._asked: OrderedDict[str, None] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._task: asyncio.Task | None = None
        self._stop = asyncio.Event()
        for sym in sorted(metrics.symbols(), key=lambda s: metrics.last_time_ms(s) or 0):
            self.touch(sym)   # a warm start keeps refreshing what was kept

    @property
    def symbols(self) -> list[str]:
        """Symbols kept fresh, least recently asked first."""
        return list(self._asked)

    def touch(self, symbol: str) -> None:
        """Mark ``symbol`` as just asked; drop (and forget) the least recently asked beyond the limit."""
        self._asked[symbol] = None
        self._asked.move_to_end(symbol)
        while len(self._asked) > self.max_symbols:
            old, _ = self._asked.popitem(last=False)
            self.metrics.forget(old)
            self._locks.pop(old, None)
            self.errors.pop(old, None)

    def is_fresh(self, symbol: str) -> bool:
        """True when the newest held candle is the last closed one."""
        last = self.metrics.last_time_ms(symbol)
        return last is not None and last + 2 * MINUTE_MS > self.now_ms()

    async def refresh(self, symbol: str) -> int:
        """Fetch ``symbol``'s new closed candles into the store; returns how many were added.

        Raises whatever ``fetch`` raises, or asyncio.TimeoutError after ``timeout`` s.
        """
        lock = self._locks.setdefault(symbol, asyncio.Lock())
        async with lock:
            added = 0
            pages = self.metrics.retention_minutes // self.limit + 2
            for _ in range(pages):
                now = self.now_ms()
                last = self.metrics.last_time_ms(symbol)
                since = last + MINUTE_MS if last is not None else now - self.metrics.retention_minutes * MINUTE_MS
                if since + MINUTE_MS > now:
                    break
                rows = await asyncio.wait_for(self.fetch(symbol, since, self.limit), self.timeout)
                closed = [r for r in rows if int(r[0]) + MINUTE_MS <= now]
                n = self.metrics.update(symbol, closed)
                added += n
                if n == 0 or len(rows) < self.limit:
                    break
            self.errors.pop(symbol, None)
            return added

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, asyncio.TimeoutError):
            return f"no answer within {self.timeout:g} s"
        return f"{type(exc).__name__}: {exc}"[:200]

    async def refresh_all(self) -> dict[str, int | str]:
        """One round over every kept symbol; returns candles added or the error text per symbol."""
        out: dict[str, int | str] = {}
        for sym in list(self._asked):
            try:
                out[sym] = await self.refresh(sym)
            except Exception as exc:  # one symbol's failure must not stop the round
                msg = self._describe(exc)
                self.errors[sym] = out[sym] = msg
                log.warning("micro_refresh_failed", symbol=sym, error=msg)
        self.rounds += 1
        try:
            self.metrics.maybe_save()
        except OSError as exc:
            log.warning("micro_save_failed", error=f"{type(exc).__name__}: {exc}"[:200])
        return out

    async def ensure(self, symbol: str) -> MicroSnapshot | None:
        """Touch ``symbol``, refresh it now unless fresh, and return its snapshot (what is held
        when the refresh fails; None when nothing is)."""
        self.touch(symbol)
        if not self.is_fresh(symbol):
            try:
                await self.refresh(symbol)
            except Exception as exc:
                msg = self._describe(exc)
                self.errors[symbol] = msg
                log.warning("micro_refresh_failed", symbol=symbol, error=msg)
        return self.metrics.snapshot(symbol)

    # -------------------------------------------------------------------- background --
    def start(self) -> asyncio.Task:
        """Run :meth:`refresh_all` every ``interval`` s in a task until :meth:`stop`."""
        if self._task is None or self._task.done():
            self._stop = asyncio.Event()
            self._task = asyncio.ensure_future(self._run())
        return self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self.refresh_all()
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop the task (after its current fetch) and save what is new."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, self.timeout + 5)
            except asyncio.TimeoutError:
                self._task.cancel()
            self._task = None
        if self.metrics.state_file is not None and self.metrics.dirty:
            try:
                self.metrics.save()
            except OSError as exc:
                log.warning("micro_save_failed", error=f"{type(exc).__name__}: {exc}"[:200])
