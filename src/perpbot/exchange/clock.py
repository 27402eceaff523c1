"""The venue's clock as seen by a ccxt client: detect expired request timestamps and re-sync.

Signed requests carry the local time (Bitget: ``ACCESS-TIMESTAMP``, ms) and the venue refuses
one that is more than 30 s from its own clock: Bitget ``40008`` "Request timestamp expired"
(also ``40004`` / ``40005``, invalid timestamp), which ccxt raises as :class:`ccxt.InvalidNonce`.
Such a request was refused at authentication, before anything was processed, so it is safe to
send it again once the clock is fixed.

ccxt signs Bitget requests with ``milliseconds() - options["timeDifference"]``
(``bitget.nonce``); :func:`sync_clock` measures the venue's clock and sets that option, as
ccxt's ``load_time_difference`` does. The venue's time is read from Bitget's server-time answer
(``GET /api/v2/public/time``): its envelope's ``requestTime``, the clock Bitget stamps on every
answer (the one that checks the timestamp window), else its ``serverTime``; on the live venue
the two are the same clock (the local simulator serves its replay time as ``serverTime``).
Other venues: ccxt's ``fetch_time``. The local time of the measurement is the midpoint of the
request (half the round trip is attributed to each direction).
"""

from __future__ import annotations

import time

from perpbot.exchange.ccxt_adapter import describe_error
from perpbot.logs import get_logger

log = get_logger("perpbot.live")


def is_timestamp_error(exc: BaseException) -> bool:
    """True when the venue refused a request for its timestamp (ccxt ``InvalidNonce``: Bitget
    40004 / 40005 / 40008)."""
    import ccxt

    return isinstance(exc, ccxt.InvalidNonce)


async def venue_time(ex) -> tuple[int, int]:
    """(venue time ms UTC, local time ms UTC at the midpoint of the request). Raises ccxt errors."""
    t0 = time.time() * 1000
    if ex.id == "bitget":
        raw = await ex.publicCommonGetV2PublicTime()
        t1 = time.time() * 1000
        server = raw.get("requestTime") or (raw.get("data") or {}).get("serverTime")
    else:
        server = await ex.fetch_time()
        t1 = time.time() * 1000
    if server is None:
        raise ValueError(f"{ex.id}: the server-time answer holds no time")
    return int(server), int(round((t0 + t1) / 2))


async def sync_clock(ex, reason: str = "") -> int | None:
    """Measure the venue's clock and set ``ex.options["timeDifference"]`` (local - venue, ms),
    which ccxt subtracts from the local time of every signed request from now on. ``reason``
    is logged. Returns the new difference, or None when the venue's time could not be read (the
    old one is kept; logged). Never raises for exchange trouble."""
    try:
        server, local = await venue_time(ex)
    except Exception as exc:  # noqa: BLE001 - any failure means: not re-synced
        log.error("clock_sync_failed", exchange=ex.id, reason=reason, error=describe_error(exc))
        return None
    old = ex.options.get("timeDifference", 0) or 0
    diff = local - server
    ex.options["timeDifference"] = diff
    (log.info if reason == "startup" else log.warning)("clock_synced", exchange=ex.id, reason=reason,
                                                        time_difference_ms=diff, change_ms=diff - old)
    return diff
