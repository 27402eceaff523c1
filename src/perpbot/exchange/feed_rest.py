"""The REST side of the candle feed (a part of :class:`~perpbot.exchange.feed.CandleFeed`):
closed candles fetched page by page to catch up after a gap, and the retry / sleep helpers."""

from __future__ import annotations

import asyncio
from typing import Callable


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:160]}"


class FeedRest:
    """REST catch-up and helpers of :class:`~perpbot.exchange.feed.CandleFeed` (reads its state)."""

    # ---- REST ----------------------------------------------------------------------------------
    def _closed_rows(self, rows: list) -> list:
        """Rows followed by a later row, or whose close time + grace has passed, sorted."""
        rows = sorted((r for r in rows or [] if r and r[0] is not None), key=lambda r: int(r[0]))
        horizon = self.now_ms() - self.tf_ms - self.close_grace_ms
        return [r for i, r in enumerate(rows) if i < len(rows) - 1 or int(r[0]) <= horizon]

    async def _catch_up(self, until: int | None = None, source: str = "backfill", confirm: int | None = None) -> int:
        """Fetch by REST and deliver every closed candle after the last delivered one (up to
        ``until``, exclusive), page by page; returns the number delivered. The candle opened
        at ``confirm`` counts as source "rest", the others as ``source``."""
        from perpbot.exchange.feed import Candle

        delivered = 0
        limit = self._page_limit()
        cursor = None if self.last_timestamp is None else self.last_timestamp + self.tf_ms
        while cursor is not None and not self._stop.is_set():
            if until is not None and cursor >= until:
                break
            rows = await self.ex.fetch_ohlcv(self.symbol, self.timeframe, cursor, limit)
            closed = [r for r in self._closed_rows(rows)
                      if int(r[0]) >= cursor and (until is None or int(r[0]) < until)]
            if not closed:
                if not rows and cursor + limit * self.tf_ms <= self.now_ms() - self.tf_ms:
                    cursor += limit * self.tf_ms  # a hole in the venue's data: look further
                    continue
                break
            for r in closed:
                await self._deliver(Candle.from_ccxt(r), "rest" if int(r[0]) == confirm else source)
                delivered += 1
            cursor = int(closed[-1][0]) + self.tf_ms
        return delivered

    async def _catch_up_safely(self, until: int | None = None, source: str = "backfill",
                               confirm: int | None = None) -> bool:
        try:
            return await self._catch_up(until, source, confirm) > 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._event("rest_failed", error=_short(exc))
            return False

    def _page_limit(self) -> int:
        try:
            m = self.ex.market(self.symbol)
            return int(self.ex.features[m["type"]]["linear" if m.get("linear") else "inverse"]["fetchOHLCV"]["limit"])
        except Exception:
            return 200

    # ---- helpers -------------------------------------------------------------------------------
    async def _retry(self, fn: Callable, *args):
        backoff = self.reconnect_base
        import ccxt

        while True:
            try:
                return await fn(*args)
            except ccxt.NetworkError as exc:
                if self._stop.is_set():
                    raise
                self._event("startup_retry", error=_short(exc), retry_in=backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.reconnect_max)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=max(0.0, seconds))
        except asyncio.TimeoutError:
            pass
