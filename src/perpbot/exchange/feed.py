"""Live market-data feed: closed candles of one symbol/timeframe, plus ticker and order-book state.

:class:`CandleFeed` delivers each CLOSED candle exactly once and in order, to a callback
(:meth:`CandleFeed.run`) or as an async iterator. Candles come from ccxt.pro
``watch_ohlcv`` websockets; REST ``fetch_ohlcv`` back-fills gaps and serves as the fallback.

* A candle (open time T) is closed when a later candle has been seen, or when the exchange
  clock reaches T + timeframe (+ ``close_grace_ms``); in the second case its values are
  re-read by REST (the last websocket update may predate the final trades).
* Before delivering candle T the feed checks that T = last delivered + timeframe; missing
  candles in between are fetched by REST and delivered first. Candles at or before the last
  delivered one are dropped, so nothing is delivered twice.
* A failed websocket is retried with exponential backoff (``reconnect_base`` x 2^k, capped
  at ``reconnect_max`` s); after each failure REST catches up on the candles closed
  meanwhile. After ``ws_failures_before_polling`` consecutive failures (or when the venue has
  no websocket) the feed polls REST every ``poll_interval`` s and tries the websocket again
  every ``ws_retry_interval`` s.
* The exchange clock defaults to the local UTC clock plus the offset to the exchange's server
  time (``fetch_time``), re-measured every 10 minutes; a replay passes its own ``clock``.

With ``watch_book`` / ``watch_ticker`` the feed also keeps :attr:`CandleFeed.book`,
:attr:`CandleFeed.book_features` (see :func:`perpbot.exchange.orderbook.orderbook_features`) and
:attr:`CandleFeed.ticker` up to date (websocket, REST polling as fallback).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

import pandas as pd

from perpbot.data.validate import timeframe_to_ms
from perpbot.exchange.clients import base_per_amount, make_async_exchange
from perpbot.exchange.feed_rest import FeedRest, _short
from perpbot.exchange.orderbook import BookTickerWatcher

__all__ = ["Candle", "CandleFeed", "make_async_exchange"]

_CLOCK_SYNC_S = 600.0


@dataclass(frozen=True)
class Candle:
    """One closed candle: ``timestamp`` = open time in ms UTC; prices USDT; volume base asset."""

    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    @classmethod
    def from_ccxt(cls, row) -> "Candle":
        """From a ccxt OHLCV row ``[ms, o, h, l, c, v]`` (a None volume becomes 0.0)."""
        return cls(int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]),
                   0.0 if row[5] is None else float(row[5]))

    @property
    def time(self) -> pd.Timestamp:
        """Open time as a tz-aware UTC pandas Timestamp."""
        return pd.Timestamp(self.timestamp, unit="ms", tz="UTC")


class CandleFeed(FeedRest):
    """Closed candles of ``symbol`` / ``timeframe`` from an asyncio ccxt client (module docstring).

    Args:
        exchange: ccxt.pro (or ccxt.async_support) instance; the caller owns and closes it.
        symbol: ccxt unified symbol, e.g. ``"SOL/USDT:USDT"``.
        timeframe: e.g. ``"5m"`` (:data:`~perpbot.data.TIMEFRAMES`).
        last_timestamp: open time (ms UTC) of the last candle the consumer already has; the
            feed delivers from the next one on, back-filling by REST. None: start after the
            latest candle closed at start-up (it is not delivered).
        clock: exchange time in ms UTC; default local clock + server-time offset.
        use_websocket: False -> REST polling only.
        poll_interval: seconds between REST polls (polling mode, ticker/book fallback).
        reconnect_base, reconnect_max: exponential backoff of websocket reconnects (s).
        ws_failures_before_polling: consecutive websocket failures before REST polling.
        ws_retry_interval: seconds in polling mode before the websocket is tried again.
        watch_book, watch_ticker: also keep the order book / ticker up to date.
        book_limit: order-book depth requested; bps: depth bands of :attr:`book_features`.
        close_grace_ms: a candle without a successor counts as closed only this long after its
            close time (the venue finalises it); default 2000 with the real clock, 0 with an
            injected ``clock`` (a replay clock jumps to the close time).
        logger: structlog-style logger for reconnects, fallbacks and gaps (``.warning(event, **kw)``).

    Attributes: ``last_timestamp`` (last delivered open time, ms), ``mode`` ("ws" | "rest"),
    ``reconnects`` (websocket failures so far), ``ws_updates`` (websocket candle messages
    received), ``delivered_by`` (count of delivered candles
    per source: "ws" websocket values, "rest" a websocket candle closed by the clock and
    re-read by REST, "backfill" REST fill of a gap, of a catch-up after a failure or of a
    candle the clock says closed before its websocket push arrived, "poll" REST polling), ``book``, ``book_features``, ``ticker``, ``ready`` (asyncio.Event set once
    the start-up catch-up is done). Raises ValueError for an unknown timeframe.
    """

    def __init__(self, exchange, symbol: str, timeframe: str, *, last_timestamp: int | None = None,
                 clock: Callable[[], int] | None = None, use_websocket: bool = True, poll_interval: float = 5.0,
                 reconnect_base: float = 1.0, reconnect_max: float = 60.0, ws_failures_before_polling: int = 3,
                 ws_retry_interval: float = 300.0, watch_book: bool = False, watch_ticker: bool = False,
                 book_limit: int | None = None, bps: tuple[float, ...] = (5, 10, 25),
                 close_grace_ms: int | None = None, logger=None) -> None:
        self.ex, self.symbol, self.timeframe = exchange, symbol, timeframe
        self.tf_ms = timeframe_to_ms(timeframe)
        self.last_timestamp = last_timestamp
        self._clock = clock
        self.close_grace_ms = int(close_grace_ms if close_grace_ms is not None else (0 if clock else 2000))
        self._offset = 0
        self._synced_at = -1e18
        self.use_websocket = use_websocket and bool(getattr(exchange, "has", {}).get("watchOHLCV"))
        self.poll_interval, self.reconnect_base, self.reconnect_max = poll_interval, reconnect_base, reconnect_max
        self.ws_failures_before_polling, self.ws_retry_interval = max(1, ws_failures_before_polling), ws_retry_interval
        self.watch_book, self.watch_ticker, self.book_limit, self.bps = watch_book, watch_ticker, book_limit, bps
        self.log = logger
        self.mode = "ws" if self.use_websocket else "rest"
        self.reconnects = 0
        self.ws_updates = 0
        self.delivered_by = {"ws": 0, "rest": 0, "backfill": 0, "poll": 0}
        self.watcher: BookTickerWatcher | None = None
        self.ready = asyncio.Event()
        self._pending: list | None = None  # latest websocket row not yet known to be closed
        self._rest_retry_at = 0.0
        self._stop = asyncio.Event()
        self._sink: Callable[[Candle], Awaitable[None] | None] | None = None
        self._contract_size = 1.0

    # ---- public ------------------------------------------------------------------------------
    @property
    def book(self) -> dict | None:
        """Latest ccxt order book (None until the first one; needs ``watch_book``)."""
        return self.watcher.book if self.watcher else None

    @property
    def book_features(self) -> dict[str, float]:
        """Latest :func:`~perpbot.exchange.orderbook.orderbook_features` of :attr:`book` ({} before)."""
        return self.watcher.features if self.watcher else {}

    @property
    def ticker(self) -> dict | None:
        """Latest ccxt ticker (None until the first one; needs ``watch_ticker``)."""
        return self.watcher.ticker if self.watcher else None

    async def run(self, on_candle: Callable[[Candle], Any]) -> None:
        """Deliver closed candles to ``on_candle`` (sync or async) until :meth:`stop`.

        Network errors are retried (backoff) forever; other errors at start-up (e.g. a symbol
        the venue does not list: ValueError) propagate. Returns after :meth:`stop`."""
        self._sink = on_candle
        side = []
        try:
            await self._startup()
            if self.watch_book or self.watch_ticker:
                self.watcher = BookTickerWatcher(
                    self.ex, self.symbol, book=self.watch_book, ticker=self.watch_ticker,
                    use_websocket=self.use_websocket, poll_interval=self.poll_interval,
                    reconnect_base=self.reconnect_base, reconnect_max=self.reconnect_max,
                    ws_failures_before_polling=self.ws_failures_before_polling,
                    ws_retry_interval=self.ws_retry_interval, book_limit=self.book_limit, bps=self.bps,
                    contract_size=self._contract_size, stop=self._stop, sleep=self._sleep, event=self._event)
                side = [asyncio.ensure_future(self.watcher.run_stream(w)) for w in self.watcher.streams]
            await self._candle_loop()
        finally:
            for t in side:
                t.cancel()
            for t in side:
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass

    def stop(self) -> None:
        """Ask :meth:`run` / the iterator to finish (after the candle being delivered).
        Call it from the event loop that runs the feed."""
        self._stop.set()

    async def __aiter__(self) -> AsyncIterator[Candle]:
        """``async for candle in feed``: runs the feed in a task; the iteration ends after
        :meth:`stop` (leaving the loop early with ``break`` stops the feed when the iterator is
        closed, e.g. with ``contextlib.aclosing``)."""
        queue: asyncio.Queue[Candle] = asyncio.Queue()
        task = asyncio.ensure_future(self.run(queue.put_nowait))
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                while not queue.empty():
                    yield queue.get_nowait()
                task.result()
                return
        finally:
            self.stop()
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def now_ms(self) -> int:
        """Exchange time in ms UTC (the injected clock, or local clock + server offset)."""
        if self._clock is not None:
            return int(self._clock())
        return int(time.time() * 1000) + self._offset

    # ---- start-up, clock ---------------------------------------------------------------------
    async def _startup(self) -> None:
        await self._retry(self.ex.load_markets)
        try:
            self._contract_size = base_per_amount(self.ex.id, self.ex.market(self.symbol))
        except Exception as exc:
            raise ValueError(f"{self.ex.id}: symbol {self.symbol!r} is not listed") from exc
        await self._sync_clock(force=True)
        if self.last_timestamp is None:
            rows = await self._retry(self.ex.fetch_ohlcv, self.symbol, self.timeframe, None, 5)
            closed = self._closed_rows(rows)
            self.last_timestamp = int(closed[-1][0]) if closed else (self.now_ms() // self.tf_ms - 1) * self.tf_ms
        else:
            await self._catch_up_safely()
        self.ready.set()

    async def _sync_clock(self, force: bool = False) -> None:
        if self._clock is not None or not self.ex.has.get("fetchTime"):
            return
        if not force and time.monotonic() - self._synced_at < _CLOCK_SYNC_S:
            return
        try:
            t0 = time.time() * 1000
            server = await self.ex.fetch_time()
            t1 = time.time() * 1000
            self._offset = int(server - (t0 + t1) / 2)
            self._synced_at = time.monotonic()
        except Exception as exc:  # keep the old offset
            self._event("clock_sync_failed", error=_short(exc))

    # ---- candle loop ---------------------------------------------------------------------------
    async def _candle_loop(self) -> None:
        failures, backoff, watch, polling_since = 0, self.reconnect_base, None, 0.0
        try:
            while not self._stop.is_set():
                if self.mode == "rest":
                    await self._catch_up_safely(source="poll")
                    if self.use_websocket and time.monotonic() - polling_since >= self.ws_retry_interval:
                        self.mode, failures = "ws", self.ws_failures_before_polling - 1  # one websocket try
                        continue
                    await self._sleep(self.poll_interval)
                    continue
                if watch is None:
                    watch = asyncio.ensure_future(self.ex.watch_ohlcv(self.symbol, self.timeframe))
                stopper = asyncio.ensure_future(self._stop.wait())
                done, _ = await asyncio.wait({watch, stopper}, timeout=min(self.poll_interval, 1.0),
                                             return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if watch not in done:
                    await self._close_by_time()
                    continue
                w, watch = watch, None
                try:
                    rows = w.result()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    self.reconnects += 1
                    self._event("ws_failed", error=_short(exc), failures=failures, retry_in=backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self.reconnect_max)
                    await self._catch_up_safely()
                    if failures >= self.ws_failures_before_polling:
                        self.mode, polling_since = "rest", time.monotonic()
                        self._event("rest_polling", reason="websocket unavailable")
                    continue
                failures, backoff = 0, self.reconnect_base
                # watch again at once: ccxt returns a push only to a call already waiting for it
                watch = asyncio.ensure_future(self.ex.watch_ohlcv(self.symbol, self.timeframe))
                self.ws_updates += 1
                await self._on_ws_rows(rows)
                await self._sync_clock()
        finally:
            if watch is not None:
                watch.cancel()

    async def _on_ws_rows(self, rows: list) -> None:
        merged = {int(self._pending[0]): self._pending} if self._pending is not None else {}
        for r in rows or []:
            if r and r[0] is not None:
                merged[int(r[0])] = list(r)  # the latest update of a candle wins
        if not merged:
            return
        ordered = [merged[k] for k in sorted(merged)]
        for r in ordered[:-1]:  # a later candle exists: these are closed
            await self._emit(Candle.from_ccxt(r))
        self._pending = ordered[-1]
        await self._close_by_time()

    async def _close_by_time(self) -> None:
        """When the clock says the candle after the last delivered one has closed, fetch it
        (and any later closed ones) by REST: the websocket may be quiet, may have coalesced
        pushes (a ccxt watch call returns only on the next message) or lost them. A REST
        attempt that finds nothing is repeated at most every ``poll_interval`` seconds; then
        the pending websocket values are used once its close time has passed."""
        if self.last_timestamp is None:
            return
        nxt = self.last_timestamp + self.tf_ms
        if self.now_ms() < nxt + self.tf_ms + self.close_grace_ms:
            return
        p = self._pending
        if time.monotonic() >= self._rest_retry_at:
            confirm = int(p[0]) if p is not None else None
            if not await self._catch_up_safely(confirm=confirm):
                self._rest_retry_at = time.monotonic() + self.poll_interval
        p = self._pending
        if p is not None and int(p[0]) <= self.last_timestamp:
            self._pending = None
        elif p is not None and self.now_ms() >= int(p[0]) + self.tf_ms + self.close_grace_ms:
            self._pending = None
            await self._emit(Candle.from_ccxt(p))

    async def _emit(self, candle: Candle) -> None:
        """Deliver ``candle`` after back-filling any gap before it; drop it when already delivered."""
        last = self.last_timestamp
        if last is not None and candle.timestamp <= last:
            return
        if last is not None and candle.timestamp > last + self.tf_ms:
            backoff = self.reconnect_base
            while not self._stop.is_set():
                try:
                    await self._catch_up(until=candle.timestamp)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # must not deliver out of order: retry the back-fill
                    self._event("backfill_failed", error=_short(exc), retry_in=backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self.reconnect_max)
            if self._stop.is_set():
                return  # stopping mid back-fill: never deliver across a gap
            if self.last_timestamp is not None and candle.timestamp > self.last_timestamp + self.tf_ms:
                self._event("gap_remains", after=self.last_timestamp, next=candle.timestamp)
        if self.last_timestamp is None or candle.timestamp > self.last_timestamp:
            await self._deliver(candle, "ws")

    async def _deliver(self, candle: Candle, source: str) -> None:
        if self.last_timestamp is not None and candle.timestamp <= self.last_timestamp:
            return
        self.last_timestamp = candle.timestamp
        self.delivered_by[source] += 1
        if self._sink is not None:
            out = self._sink(candle)
            if inspect.isawaitable(out):
                await out

    def _event(self, name: str, **kw) -> None:
        if self.log is not None:
            self.log.warning(name, feed=f"{self.symbol} {self.timeframe}", mode=self.mode, **kw)
