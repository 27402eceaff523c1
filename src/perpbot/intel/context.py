"""All market context of a symbol in one call, never raising, never waiting past a timeout.

:class:`MarketContext` holds the configured clients (each optional) and
:meth:`MarketContext.snapshot` asks them all at once; every part runs under its own
``timeout`` (seconds) and ends in a :class:`~perpbot.intel.snapshot.SourceStatus`. A client
that is not configured gives ``disabled``; CoinGlass without a key gives ``keyless`` without a
request. :meth:`MarketContext.from_settings` builds everything from
:class:`perpbot.config.Settings` (the venue's ccxt client is injected: the caller builds and
closes it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from perpbot.intel.coinglass import CoinGlassClient
from perpbot.intel.feargreed import FearGreedClient
from perpbot.intel.micro import MicroMetrics
from perpbot.intel.refresh import MicroRefresher
from perpbot.intel.sentiment.scorer import get_scorer
from perpbot.intel.sentiment.service import SentimentService
from perpbot.intel.sentiment.sources import build_sources
from perpbot.intel.snapshot import PARTS, MarketSnapshot, SourceStatus
from perpbot.intel.source import SourceError
from perpbot.intel.symbols import coin_of, perp_symbol
from perpbot.intel.venue import VenueClient
from perpbot.logs import get_logger

__all__ = ["MarketContext"]

log = get_logger("perpbot.intel")


class MarketContext:
    """The market-context clients of one process (module docstring). Close with :meth:`aclose`.

    Args:
        coinglass, fear_greed, venue, sentiment: clients (None: that part is ``disabled``).
        micro: a :class:`~perpbot.intel.refresh.MicroRefresher` (its store answers ``micro``).
        timeout: seconds each part may take.
        order_book_depth: levels per side of the ``order_book`` part.
        liquidation_interval: bar interval asked of CoinGlass liquidations (normalised to the plan).
    """

    def __init__(self, *, coinglass: CoinGlassClient | None = None, fear_greed: FearGreedClient | None = None,
                 venue: VenueClient | None = None, micro: MicroRefresher | None = None,
                 sentiment: SentimentService | None = None, timeout: float = 5.0, order_book_depth: int = 20,
                 liquidation_interval: str = "4h") -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout}")
        self.coinglass = coinglass
        self.fear_greed = fear_greed
        self.venue = venue
        self.micro = micro
        self.sentiment = sentiment
        self.timeout = float(timeout)
        self.order_book_depth = int(order_book_depth)
        self.liquidation_interval = liquidation_interval
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def _plan(self, symbol: str, coin: str) -> dict[str, tuple[str, Callable[[], Awaitable[Any]] | None]]:
        cg, fg, ve, mi, se = self.coinglass, self.fear_greed, self.venue, self.micro, self.sentiment
        venue_name = ve.source.name if ve else "venue"
        return {
            "funding": ("coinglass", cg and (lambda: cg.funding_rates(coin))),
            "open_interest": ("coinglass", cg and (lambda: cg.open_interest(coin))),
            "long_short": ("coinglass", cg and (lambda: cg.long_short_ratio(coin))),
            "liquidations": ("coinglass", cg and (lambda: cg.liquidations(coin, self.liquidation_interval))),
            "fear_greed": ("fear_greed", fg and fg.current),
            "ticker": (venue_name, ve and (lambda: ve.ticker(symbol))),
            "venue_funding": (venue_name, ve and (lambda: ve.funding_rate(symbol))),
            "venue_open_interest": (venue_name, ve and (lambda: ve.open_interest(symbol))),
            "order_book": (venue_name, ve and (lambda: ve.order_book(symbol, self.order_book_depth))),
            "micro": ("micro", mi and (lambda: mi.ensure(symbol))),
            "sentiment": ("sentiment", se and (lambda: se.reading(symbol))),
        }

    async def _run(self, part: str, source: str, call: Callable[[], Awaitable[Any]] | None) -> tuple[Any, SourceStatus]:
        if call is None:
            return None, SourceStatus(part, source, "disabled", "not configured")
        t0 = time.perf_counter()

        def status(state: str, detail: str = "") -> SourceStatus:
            return SourceStatus(part, source, state, detail, (time.perf_counter() - t0) * 1000)

        try:
            value = await asyncio.wait_for(call(), self.timeout)
        except asyncio.TimeoutError:
            return None, status("timeout", f"no answer within {self.timeout:g} s")
        except SourceError as exc:
            return None, status(exc.state, exc.detail)
        except Exception as exc:  # the snapshot never raises
            log.warning("intel_part_failed", part=part, error=f"{type(exc).__name__}: {exc}"[:200])
            return None, status("error", f"{type(exc).__name__}: {exc}"[:200])
        if value is None:
            return None, status("no_data", "nothing held yet")
        return value, status("ok")

    async def snapshot(self, symbol: str, parts: Iterable[str] | None = None) -> MarketSnapshot:
        """Every part (or ``parts``) of ``symbol``'s market context, each within ``timeout``.

        ``symbol`` in any spelling :func:`~perpbot.intel.symbols.coin_of` reads; the venue is
        asked for the USDT linear perpetual (``"SOL/USDT:USDT"``). Raises ValueError only for
        an unreadable symbol or an unknown part name.
        """
        wanted = list(parts) if parts is not None else list(PARTS)
        unknown = [p for p in wanted if p not in PARTS]
        if unknown:
            raise ValueError(f"unknown snapshot parts {unknown}; known: {', '.join(PARTS)}")
        coin = coin_of(symbol)
        unified = symbol if "/" in symbol else perp_symbol(coin)
        plan = self._plan(unified, coin)
        taken = datetime.now(UTC)
        results = await asyncio.gather(*(self._run(p, *plan[p]) for p in wanted))
        snap = MarketSnapshot(symbol=unified, coin=coin, taken_at=taken)
        for p, (value, st) in zip(wanted, results):
            snap.statuses[p] = st
            if value is not None:
                snap.values[p] = value
        return snap

    async def aclose(self) -> None:
        """Stop the micro refresher and close the HTTP clients this context owns (not the venue's ccxt client)."""
        if self.micro is not None:
            await self.micro.stop()
        for client in (self.coinglass, self.fear_greed):
            if client is not None:
                await client.aclose()
        for close in self._closers:
            await close()

    @classmethod
    def from_settings(cls, settings: Any, *, exchange: Any = None, fetch_1m: Any = None) -> "MarketContext":
        """Build every enabled client from :class:`perpbot.config.Settings` (``intel_*``,
        ``micro_*``, ``sentiment_*`` and ``coinglass_api_key``).

        ``exchange``: an asyncio ccxt client of the signal venue (None: venue parts and the
        micro refresher are disabled unless ``fetch_1m`` feeds the latter). Nothing is
        started: call ``context.micro.start()`` inside the event loop to refresh in the background.
        """
        s = settings
        common = {"retries": s.intel_retries, "timeout": s.intel_timeout}
        cg = CoinGlassClient(s.coinglass_api_key, base_url=s.intel_coinglass_base_url, plan=s.intel_coinglass_plan,
                             exchanges=s.intel_coinglass_exchanges, lsr_ranges=s.intel_long_short_ranges,
                             ttl=s.intel_cache_ttl, cooldown=s.intel_cooldown, **common) if s.intel_coinglass else None
        fg = FearGreedClient(base_url=s.intel_fear_greed_base_url, ttl=s.intel_fear_greed_ttl, **common) \
            if s.intel_fear_greed else None
        venue = VenueClient(exchange, ttl=s.intel_venue_ttl, cooldown=s.intel_cooldown, **common) \
            if exchange is not None and s.intel_venue else None
        micro = None
        fetch = fetch_1m or (venue.ohlcv_1m if venue is not None else None)
        if s.micro_metrics and fetch is not None:
            state = s.micro_state_file or s.output_dir / "intel" / "micro_1m.parquet"
            store = MicroMetrics(retention_minutes=s.micro_retention_minutes, buckets=s.micro_buckets,
                                 value_area=s.micro_value_area / 100.0, atr_period=s.micro_atr_period,
                                 state_file=state, save_interval=s.micro_save_interval)
            store.load()
            micro = MicroRefresher(store, fetch, interval=s.micro_refresh_interval, max_symbols=s.micro_symbol_limit,
                                   timeout=s.intel_deadline)
        sentiment, closers = None, []
        if s.sentiment:
            sources, https = build_sources(s.sentiment_feeds, s.sentiment_subreddits,
                                           reddit_base_url=s.sentiment_reddit_base_url, ttl=s.sentiment_cache_ttl,
                                           timeout=s.intel_timeout, retries=s.intel_retries,
                                           user_agent=s.sentiment_user_agent)
            sentiment = SentimentService(sources, get_scorer(s.sentiment_scorer), s.sentiment_keywords,
                                         window_hours=s.sentiment_window_hours,
                                         retention_hours=s.sentiment_retention_hours, timeout=s.intel_deadline)
            closers = [h.aclose for h in https]
        ctx = cls(coinglass=cg, fear_greed=fg, venue=venue, micro=micro, sentiment=sentiment,
                  timeout=s.intel_deadline, liquidation_interval=s.intel_liquidation_interval)
        ctx._closers = closers
        return ctx
