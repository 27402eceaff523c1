"""The trading venue itself, through an injected asyncio ccxt client: ticker, funding rate,
open interest, order book and 1-minute candles, with the same cache / cooldown / retry /
timeout rules as the other sources (:class:`~perpbot.intel.source.CachedSource`).

The caller builds and closes the ccxt client (``ccxt.async_support`` or ``ccxt.pro``; the
restructure puts that factory in ``perpbot.exchange``); symbols are ccxt unified symbols of
linear perpetuals (``"SOL/USDT:USDT"``, see :func:`perpbot.intel.symbols.perp_symbol`).
ccxt's ``NetworkError`` family (timeouts, DDoS protection, rate limits, maintenance) is
retried; ``BadSymbol`` is ``no_data``, ``AuthenticationError`` ``unauthorized``,
``NotSupported`` and other ``ExchangeError`` ``rejected``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import ccxt.async_support as ccxt

from perpbot.intel.models import OrderBook, VenueFunding, VenueOpenInterest, VenueTicker
from perpbot.intel.source import (
    CachedSource, SourceNoData, SourceRejected, SourceUnauthorized, TransientError,
)

__all__ = ["VenueClient"]


def _ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value) / 1000.0, UTC) if value else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _f(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


class VenueClient:
    """Market data of one venue from an injected ccxt exchange instance (module docstring).

    Args:
        exchange: asyncio ccxt exchange (the caller owns and closes it).
        ttl: cache lifetime of ticker / funding / open-interest answers, s (order book:
            ``book_ttl``; 1m candles are never cached, :meth:`ohlcv` for the ``ttl`` it is given).
        cooldown, retries, timeout, backoff, clock: see :class:`~perpbot.intel.source.CachedSource`.
    """

    def __init__(self, exchange: Any, *, ttl: float = 5.0, book_ttl: float = 1.0, cooldown: float = 0.0,
                 retries: int = 1, timeout: float = 5.0, backoff: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.exchange = exchange
        self.id = str(getattr(exchange, "id", "venue"))
        self.book_ttl = float(book_ttl)
        self.source = CachedSource(f"venue:{self.id}", ttl=ttl, cooldown=cooldown, retries=retries,
                                   timeout=timeout, backoff=backoff, clock=clock)

    async def _call(self, endpoint: str, symbol: str, call: Callable[[], Awaitable[Any]], *, key: tuple = (),
                    ttl: float | Callable[[Any], float] | None = None, cool: bool = True) -> Any:
        name = self.source.name

        async def fetch() -> Any:
            try:
                return await call()
            except ccxt.NetworkError as exc:
                raise TransientError(f"{self.id} {type(exc).__name__}") from None
            except ccxt.AuthenticationError:
                raise SourceUnauthorized(name, f"{self.id} refused the API credentials") from None
            except ccxt.BadSymbol:
                raise SourceNoData(name, f"{symbol} is not listed on {self.id}") from None
            except ccxt.NotSupported:
                raise SourceRejected(name, f"{self.id} offers no {endpoint} through ccxt") from None
            except ccxt.ExchangeError as exc:
                raise SourceRejected(name, f"{self.id} refused {endpoint} ({type(exc).__name__})") from None

        return await self.source.get((endpoint, symbol, *key), fetch, symbol=symbol if cool else None, ttl=ttl)

    async def ticker(self, symbol: str) -> VenueTicker:
        """Last, bid, ask, mark and index price (quote currency), 24 h quote volume and change %."""
        t = await self._call("ticker", symbol, lambda: self.exchange.fetch_ticker(symbol))
        info = t.get("info") or {}
        return VenueTicker(symbol=symbol, last=_f(t.get("last")), bid=_f(t.get("bid")), ask=_f(t.get("ask")),
                           mark=_f(t.get("markPrice")) or _f(info.get("markPrice")),
                           index=_f(t.get("indexPrice")) or _f(info.get("indexPrice")),
                           quote_volume=_f(t.get("quoteVolume")), change_pct=_f(t.get("percentage")),
                           time=_ms(t.get("timestamp")))

    async def funding_rate(self, symbol: str) -> VenueFunding:
        """Current funding rate (fraction per interval) and next funding time."""
        f = await self._call("funding", symbol, lambda: self.exchange.fetch_funding_rate(symbol))
        rate = _f(f.get("fundingRate"))
        if rate is None:
            raise SourceNoData(self.source.name, f"{self.id} gave no funding rate for {symbol}")
        return VenueFunding(symbol=symbol, funding_rate=rate,
                            next_funding_time=_ms(f.get("fundingTimestamp") or f.get("nextFundingTimestamp")),
                            mark=_f(f.get("markPrice")), as_of=datetime.now(UTC))

    async def open_interest(self, symbol: str) -> VenueOpenInterest:
        """Open interest in base asset and (when the venue gives it) quote currency."""
        oi = await self._call("open_interest", symbol, lambda: self.exchange.fetch_open_interest(symbol))
        amount, value = _f(oi.get("openInterestAmount")), _f(oi.get("openInterestValue"))
        if amount is None and value is None:
            raise SourceNoData(self.source.name, f"{self.id} gave no open interest for {symbol}")
        return VenueOpenInterest(symbol=symbol, amount=amount, value=value, as_of=datetime.now(UTC))

    async def order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        """Top ``limit`` levels per side: (price in quote currency, quantity in base asset)."""
        ob = await self._call("order_book", symbol, lambda: self.exchange.fetch_order_book(symbol, limit),
                              key=(int(limit),), ttl=self.book_ttl, cool=False)
        bids = tuple((float(p), float(q)) for p, q, *_ in ob.get("bids") or [])
        asks = tuple((float(p), float(q)) for p, q, *_ in ob.get("asks") or [])
        return OrderBook(symbol=symbol, bids=bids, asks=asks, time=_ms(ob.get("timestamp")), as_of=datetime.now(UTC))

    async def ohlcv(self, symbol: str, timeframe: str, limit: int, ttl: float | Callable[[Any], float] = 0.0
                    ) -> list[list[float]]:
        """The last ``limit`` candles of ``timeframe`` ``[open ms UTC, o, h, l, c, volume (base)]``,
        oldest first, as the venue sends them (the last may still be forming); cached ``ttl`` s
        (or ``ttl(rows)``), no cooldown."""
        rows = await self._call("ohlcv", symbol, lambda: self.exchange.fetch_ohlcv(symbol, timeframe, None, limit),
                                key=(timeframe, int(limit)), ttl=ttl, cool=False)
        return [list(r) for r in rows or []]

    async def ohlcv_1m(self, symbol: str, since: int | None = None, limit: int | None = None) -> list[list[float]]:
        """1-minute candles ``[open time ms UTC, open, high, low, close, volume (base)]``, oldest
        first, as the venue sends them (the last one may still be forming). Never cached."""
        rows = await self._call("ohlcv_1m", symbol, lambda: self.exchange.fetch_ohlcv(symbol, "1m", since, limit),
                                key=(since, limit), ttl=0.0, cool=False)
        return [list(r) for r in rows or []]
