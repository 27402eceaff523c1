"""What every market-intelligence source shares: its errors, a TTL cache, a per-symbol
cooldown, retries with exponential backoff (tenacity) and in-flight de-duplication.

:class:`CachedSource` wraps one outside source. ``await source.get(key, fetch, symbol=...)``:

1. answers from the TTL cache (``cachetools.TLRUCache``, a TTL per entry) when ``key`` is
   there and fresh — no request;
2. joins the request already under way for the same ``key`` (two chats asking for SOL at once
   cause one upstream request);
3. refuses to ask upstream again for the same (endpoint, symbol) within ``cooldown`` seconds of
   the last upstream request: it answers with the last value it got for ``key`` if any, else
   raises :class:`SourceCooldown` (so a failing or rate-limited source is not hammered);
4. otherwise calls ``fetch()``: every attempt bounded by ``timeout`` seconds, a
   :class:`TransientError` (connection failure, timeout, HTTP 429/5xx) retried up to
   ``retries`` times with exponential backoff; what is left is raised as a
   :class:`SourceError` whose ``state`` says why (``down``, ``unauthorized``, ``rejected``,
   ``no_data``...).

Keys are tuples whose first element names the endpoint (``("funding", "SOL")``). Times come
from ``clock`` (monotonic seconds) so tests can move time without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import cachetools
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from perpbot.logs import get_logger

__all__ = [
    "CachedSource", "Cooldown", "SourceCooldown", "SourceDown", "SourceError", "SourceKeyless", "SourceNoData",
    "SourceRejected", "SourceUnauthorized", "TransientError",
]

T = TypeVar("T")
log = get_logger("perpbot.intel")


class SourceError(Exception):
    """A source could not answer. ``state`` is the machine-readable reason, ``detail`` one line
    for people (never a secret)."""

    state = "error"

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"{source}: {detail}")
        self.source = source
        self.detail = detail


class SourceDown(SourceError):
    """Unreachable, timing out or failing (HTTP 5xx / 429) after every retry."""

    state = "down"


class SourceKeyless(SourceError):
    """The source needs an API key and none is set."""

    state = "keyless"


class SourceUnauthorized(SourceError):
    """The source refused the API key (HTTP 401/403 or its own auth error code)."""

    state = "unauthorized"


class SourceRejected(SourceError):
    """The source refused the request (HTTP 4xx, an error code, an unreadable answer)."""

    state = "rejected"


class SourceNoData(SourceError):
    """The source answered, with nothing for this symbol / range."""

    state = "no_data"


class SourceCooldown(SourceError):
    """Asked again within the per-symbol cooldown and nothing earlier to answer with."""

    state = "cooldown"


class TransientError(Exception):
    """A failure worth retrying (connection refused, timeout, HTTP 429 / 5xx)."""


class Cooldown:
    """Per-key minimum spacing between events, in seconds of ``clock`` (monotonic)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic, maxsize: int = 4096) -> None:
        if seconds < 0:
            raise ValueError(f"cooldown must be >= 0 s, got {seconds}")
        self.seconds = float(seconds)
        self._clock = clock
        self._started: cachetools.TTLCache = cachetools.TTLCache(maxsize, ttl=max(self.seconds, 1e-9), timer=clock)

    def remaining(self, key: Hashable) -> float:
        """Seconds until ``key`` is ready again (0.0 when ready)."""
        if self.seconds <= 0:
            return 0.0
        started = self._started.get(key)
        if started is None:
            return 0.0
        return max(0.0, self.seconds - (self._clock() - started))

    def ready(self, key: Hashable) -> bool:
        return self.remaining(key) <= 0.0

    def start(self, key: Hashable) -> None:
        """Start (or restart) the cooldown of ``key`` now."""
        if self.seconds > 0:
            self._started[key] = self._clock()

    def hit(self, key: Hashable) -> bool:
        """True and start the cooldown when ``key`` is ready; False while it cools down."""
        if not self.ready(key):
            return False
        self.start(key)
        return True


class CachedSource:
    """Cache + cooldown + retries around one outside source (module docstring).

    Args:
        name: source name used in errors and statuses, e.g. ``"coinglass"``.
        ttl: default cache lifetime of an answer, seconds (0 = no caching).
        cooldown: minimum seconds between two upstream requests for one (endpoint, symbol).
        retries: extra attempts after a transient failure (0 = one attempt).
        timeout: seconds one attempt may take.
        backoff: first backoff wait, seconds; doubles per retry (capped at 8x).
        clock: monotonic seconds, for the cache and the cooldown.

    ``requests`` counts upstream attempts (cache hits and cooldown answers do not count).
    """

    def __init__(self, name: str, *, ttl: float = 60.0, cooldown: float = 0.0, retries: int = 2,
                 timeout: float = 5.0, backoff: float = 0.25, clock: Callable[[], float] = time.monotonic,
                 maxsize: int = 1024) -> None:
        if ttl < 0 or retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError("ttl, retries and backoff must be >= 0 and timeout > 0")
        self.name = name
        self.ttl = float(ttl)
        self.retries = int(retries)
        self.timeout = float(timeout)
        self.backoff = float(backoff)
        self.cooldown = Cooldown(cooldown, clock)
        self.requests = 0
        self._cache: cachetools.TLRUCache = cachetools.TLRUCache(maxsize, ttu=lambda _k, v, now: now + v[1],
                                                                timer=clock)
        self._last: cachetools.LRUCache = cachetools.LRUCache(maxsize)
        self._inflight: dict[Hashable, asyncio.Task] = {}

    def cached(self, key: Hashable) -> Any | None:
        """The fresh cached answer for ``key`` or None."""
        hit = self._cache.get(key)
        return None if hit is None else hit[0]

    def clear(self) -> None:
        """Forget cached answers (not the cooldowns)."""
        self._cache.clear()

    async def get(self, key: tuple, fetch: Callable[[], Awaitable[T]], *, symbol: str | None = None,
                  ttl: float | Callable[[Any], float] | None = None) -> T:
        """The answer for ``key``: cached, joined, last-known within the cooldown, or fetched.

        ``ttl`` overrides the default cache lifetime (seconds), or computes it from the answer
        (a callable, e.g. "until the source's next update"). ``symbol`` None: no cooldown.

        Raises:
            SourceError: a subclass naming why there is no answer (see the module docstring).
        """
        hit = self._cache.get(key)
        if hit is not None:
            return hit[0]
        task = self._inflight.get(key)
        if task is None:
            cool_key = (key[0], symbol) if symbol is not None else None
            if cool_key is not None and not self.cooldown.ready(cool_key):
                if key in self._last:
                    return self._last[key]
                wait = self.cooldown.remaining(cool_key)
                raise SourceCooldown(self.name, f"{symbol} was asked within the last {self.cooldown.seconds:g} s "
                                                f"and the source had no answer; try again in {wait:.0f} s")
            if cool_key is not None:
                self.cooldown.start(cool_key)
            task = asyncio.ensure_future(self._fetch(key, fetch, self.ttl if ttl is None else ttl))
            self._inflight[key] = task
            task.add_done_callback(lambda _t, k=key: self._inflight.pop(k, None))
        return await asyncio.shield(task)

    async def _fetch(self, key: Hashable, fetch: Callable[[], Awaitable[T]],
                     ttl: float | Callable[[Any], float]) -> T:
        attempts = 0
        retrying = AsyncRetrying(stop=stop_after_attempt(self.retries + 1),
                                 wait=wait_exponential(multiplier=self.backoff, max=self.backoff * 8),
                                 retry=retry_if_exception_type(TransientError), reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    self.requests += 1
                    try:
                        value = await asyncio.wait_for(fetch(), self.timeout)
                    except asyncio.TimeoutError:
                        raise TransientError(f"no answer within {self.timeout:g} s") from None
        except TransientError as exc:
            log.warning("intel_source_down", source=self.name, endpoint=str(key[0]), attempts=attempts,
                        detail=str(exc))
            raise SourceDown(self.name, f"{exc} (after {attempts} attempt{'s' * (attempts > 1)})") from None
        except SourceError as exc:
            log.warning("intel_source_error", source=self.name, endpoint=str(key[0]), state=exc.state,
                        detail=exc.detail)
            raise
        life = float(ttl(value)) if callable(ttl) else float(ttl)
        if life > 0:
            self._cache[key] = (value, life)
        self._last[key] = value
        return value
