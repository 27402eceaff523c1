"""Crypto Fear & Greed Index client (alternative.me, no API key).

Protocol (https://alternative.me/crypto/fear-and-greed-index/ , section "API"):
``GET https://api.alternative.me/fng/?limit=N&format=json`` (``limit=0`` = all history)
answers ``{"name": "Fear and Greed Index", "data": [{"value": "40", "value_classification":
"Fear", "timestamp": "1551157200", "time_until_update": "68499"}, ...], "metadata":
{"error": null}}``: newest first, values and Unix-second timestamps as strings,
``time_until_update`` (seconds) only on the newest entry. The index is daily, so an answer
is cached until ``time_until_update`` runs out (at least 60 s, at most 24 h) or for the
client's ``ttl`` when the source does not say.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from perpbot.intel.http import JsonHttp
from perpbot.intel.models import FearGreed
from perpbot.intel.source import CachedSource, SourceNoData, SourceRejected

__all__ = ["FNG_BASE_URL", "FearGreedClient"]

FNG_BASE_URL = "https://api.alternative.me"


def _int(value: Any) -> int | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return int(v) if math.isfinite(v) else None


class FearGreedClient:
    """Async alternative.me Fear & Greed client. Close it with :meth:`aclose`.

    Args: ``base_url`` (tests point it at a local fake server) and the cache / retry settings
    of :class:`~perpbot.intel.source.CachedSource` (``ttl`` is the fallback cache lifetime, s).
    """

    def __init__(self, *, base_url: str = FNG_BASE_URL, ttl: float = 3600.0, retries: int = 2,
                 timeout: float = 5.0, backoff: float = 0.25, clock: Callable[[], float] = time.monotonic,
                 client: httpx.AsyncClient | None = None) -> None:
        self.http = JsonHttp("fear_greed", base_url, timeout=timeout, client=client)
        self.source = CachedSource("fear_greed", ttl=ttl, retries=retries, timeout=timeout, backoff=backoff,
                                   clock=clock)

    async def aclose(self) -> None:
        await self.http.aclose()

    def _ttl(self, values: tuple[FearGreed, ...]) -> float:
        until = values[-1].time_until_update_s if values else None
        if until is None or until <= 0:
            return self.source.ttl
        return float(min(max(until, 60), 86400))

    async def history(self, limit: int = 30) -> tuple[FearGreed, ...]:
        """The last ``limit`` daily values, **oldest first** (``limit=0``: the whole history).

        Raises:
            SourceError: down / rejected (``metadata.error`` set, or not the documented shape) /
            no_data (an empty list).
        """
        if int(limit) != limit or limit < 0:
            raise ValueError(f"limit must be an integer >= 0, got {limit!r}")

        async def fetch() -> tuple[FearGreed, ...]:
            body = await self.http.get_json("/fng/", {"limit": int(limit), "format": "json"})
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise SourceRejected("fear_greed", "the answer has no data list")
            err = (body.get("metadata") or {}).get("error")
            if err:
                raise SourceRejected("fear_greed", f"the source reports an error: {str(err)[:120]}")
            out = []
            for row in body["data"]:
                value, ts = _int(row.get("value")), _int(row.get("timestamp"))
                if value is None or ts is None:
                    continue
                out.append(FearGreed(value=value, classification=str(row.get("value_classification", "")),
                                     time=datetime.fromtimestamp(ts, UTC),
                                     time_until_update_s=_int(row.get("time_until_update"))))
            if not out:
                raise SourceNoData("fear_greed", "the index answered with no values")
            return tuple(sorted(out, key=lambda f: f.time))

        return await self.source.get(("fng", int(limit)), fetch, ttl=self._ttl)

    async def current(self) -> FearGreed:
        """Today's value (with ``time_until_update_s``)."""
        return (await self.history(1))[-1]
