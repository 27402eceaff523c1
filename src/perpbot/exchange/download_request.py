"""The checks before a download: the request (kinds, time bounds), the client of the venue and
its market (symbol and timeframe listed); each failure is one :class:`DownloadError` line."""

from __future__ import annotations

import difflib
from typing import Iterable

import numpy as np
import pandas as pd

from perpbot.data.store import KINDS
from perpbot.data.validate import TIMEFRAMES
from perpbot.exchange.clients import point_rest, swap_options, unknown_exchange


class DownloadError(RuntimeError):
    """A download cannot be done or was stopped; the message is one line for the user."""


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_time(text: str | int | None, name: str = "time") -> int | None:
    """ISO date/time (``2025-06-01``, ``2025-06-01T12:00``, naive = UTC) or epoch ms -> ms UTC.

    Raises DownloadError naming ``name`` when the text is not a date.
    """
    if text is None or text == "":
        return None
    if isinstance(text, (int, np.integer)):
        return int(text)
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise DownloadError(f"{name} {text!r} is not an ISO date such as 2025-06-01 or 2025-06-01T12:00") from None
    if ts is pd.NaT:
        raise DownloadError(f"{name} {text!r} is not an ISO date such as 2025-06-01")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def make_sync_exchange(exchange_id: str, api_url: str | None = None, timeout_ms: int = 15_000,
                  options: dict | None = None):
    """A synchronous ccxt client with ``enableRateLimit`` for the swap markets of ``exchange_id``.

    ``api_url`` replaces every REST base url (a local simulator or proxy). Bitget gets
    ``{"defaultType": "swap", "uta": False, "fetchMarkets": {"types": ["swap"]}}``.
    Raises DownloadError for an id that is not a ccxt exchange.
    """
    import ccxt

    refusal = unknown_exchange(exchange_id)
    if refusal:
        raise DownloadError(refusal)
    opts = swap_options(exchange_id)
    opts.update(options or {})
    return point_rest(getattr(ccxt, exchange_id)({"enableRateLimit": True, "timeout": timeout_ms, "options": opts}),
                      api_url)


def check_request(kinds: Iterable[str], since=None, until=None) -> tuple[list[str], int | None, int | None]:
    """Validate the kinds and the time bounds of a download: (kinds, since ms, until ms).

    Raises DownloadError for an unknown or empty kind list, a bound that is not a date, or
    ``since >= until``."""
    kinds = list(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise DownloadError(f"unknown data kind(s) {', '.join(bad) or '(none given)'}; allowed: {', '.join(KINDS)}")
    since_ms, until_ms = parse_time(since, "--since"), parse_time(until, "--until")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise DownloadError(f"--since ({since}) must be before --until ({until})")
    return kinds, since_ms, until_ms


def resolve_market(ex, symbol: str, timeframe: str) -> dict:
    """Load the markets and check ``symbol`` and ``timeframe``; return the ccxt market.

    Raises DownloadError for a symbol the venue does not list, a timeframe the venue or the
    store does not support, or a network failure while loading the markets.
    """
    import ccxt

    if timeframe not in TIMEFRAMES:
        raise DownloadError(f"timeframe {timeframe!r} is not supported by the store; allowed: {', '.join(TIMEFRAMES)}")
    if ex.timeframes and timeframe not in ex.timeframes:
        raise DownloadError(f"{ex.id} does not offer timeframe {timeframe!r}; it offers {', '.join(ex.timeframes)}")
    try:
        ex.load_markets()
    except ccxt.NetworkError as exc:
        raise DownloadError(f"{ex.id}: network error while loading markets (is the venue reachable?): "
                            f"{_one_line(exc)}") from None
    except ccxt.BaseError as exc:
        raise DownloadError(f"{ex.id}: cannot load markets: {_one_line(exc)}") from None
    if symbol not in ex.markets:
        close = difflib.get_close_matches(symbol, list(ex.markets), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise DownloadError(f"{ex.id}: symbol {symbol!r} is not listed{hint}")
    return ex.market(symbol)
