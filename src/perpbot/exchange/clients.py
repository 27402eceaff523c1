"""The ccxt client factories of market data and the venue registry (one module per venue).

:func:`swap_options` gives the ccxt ``options`` of the markets perpbot trades on a venue: its
USDT-M swaps, or the spot markets of a spot venue (Indodax, Tokocrypto), with its quirks from the
venue module (e.g. :mod:`perpbot.exchange.bitget`); :func:`capabilities` its
:class:`~perpbot.exchange.bitget.VenueCapabilities` (None for a venue without a module);
:func:`base_per_amount` the base asset per unit of ccxt's order amount on a market.
:func:`make_async_exchange` builds the asyncio client of the candle feed; the synchronous one of
the downloader is :func:`perpbot.exchange.download.make_sync_exchange`, the trading one
:func:`perpbot.exchange.ccxt_adapter.make_exchange` (both use :func:`swap_options`); the public
market-data client of the intelligence commands :func:`make_public_exchange`, the price clients of the
platform's oracle :func:`make_price_client`. :func:`unknown_exchange` refuses an id ccxt does not know.
"""

from __future__ import annotations

import difflib
from typing import Any

from perpbot.exchange import binance, bitget, bybit, indodax, mexc, okx, tokocrypto, weex
from perpbot.exchange.bitget import VenueCapabilities

#: Venue modules by ccxt id: a new venue is one module with ``ID``, ``CCXT_OPTIONS`` and ``CAPABILITIES``
#: (USDT-M perpetuals: Bitget ... WEEX; spot: Indodax, Tokocrypto, ``CAPABILITIES.market_type == "spot"``).
VENUES = {m.ID: m for m in (bitget, binance, bybit, okx, mexc, weex, indodax, tokocrypto)}


def swap_options(exchange_id: str) -> dict[str, Any]:
    """ccxt ``options`` for the markets perpbot trades on ``exchange_id`` (a fresh dict):
    ``defaultType`` swap, which a spot venue's ``CCXT_OPTIONS`` turn into spot."""
    opts: dict[str, Any] = {"defaultType": "swap"}
    venue = VENUES.get(exchange_id)
    if venue is not None:
        opts.update(venue.CCXT_OPTIONS)
    return opts


def capabilities(exchange_id: str) -> VenueCapabilities | None:
    """The venue's capabilities, or None when perpbot has no module for it."""
    venue = VENUES.get(exchange_id)
    return venue.CAPABILITIES if venue is not None else None


def is_spot_venue(exchange_id: str) -> bool:
    """True for a venue whose module trades spot markets (Indodax, Tokocrypto)."""
    caps = capabilities(exchange_id)
    return caps is not None and caps.market_type == "spot"


def base_per_amount(exchange_id: str, market: dict) -> float:
    """Base asset per unit of ccxt's amount on ``market``: its ``contractSize`` (1 when absent), or
    1 on a venue whose module sets ``BASE_AMOUNTS`` (WEEX: ccxt reports the contract's face value
    as ``contractSize`` while orders and positions are in base asset)."""
    if getattr(VENUES.get(exchange_id), "BASE_AMOUNTS", False):
        return 1.0
    return float(market.get("contractSize") or 1.0)


def make_async_exchange(exchange_id: str, api_url: str | None = None, config: dict | None = None):
    """An asyncio ccxt client for ``exchange_id``: the ccxt.pro class (websockets + REST) when the
    venue has one, else ccxt.async_support (REST only). Swap markets; Bitget with
    ``uta: False`` and swap-only market loading. ``api_url`` replaces every REST base url.
    Raises ValueError for an unknown exchange id. The caller closes it (``await ex.close()``)."""
    import ccxt.async_support as ccxt_async
    import ccxt.pro as ccxt_pro

    cls = getattr(ccxt_pro, exchange_id, None) or getattr(ccxt_async, exchange_id, None)
    if cls is None or exchange_id not in ccxt_async.exchanges:
        raise ValueError(f"unknown exchange {exchange_id!r}: not a ccxt exchange id")
    cfg = {"enableRateLimit": True, "options": swap_options(exchange_id)}
    cfg.update(config or {})
    ex = cls(cfg)
    if api_url:
        api = ex.urls.get("api")
        ex.urls["api"] = {k: (v if k == "ws" else api_url) for k, v in api.items()} if isinstance(api, dict) \
            else api_url
    return ex


def unknown_exchange(exchange_id: str) -> str | None:
    """None for a ccxt exchange id, else the one-line refusal naming the nearest ids."""
    import ccxt

    if exchange_id in ccxt.exchanges:
        return None
    close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown exchange {exchange_id!r}: not a ccxt exchange id{hint}"


def point_rest(ex, api_url: str | None):
    """``ex`` with every REST base url (and any other url of its ``api`` table) replaced by ``api_url``
    (a local simulator or proxy); unchanged when ``api_url`` is None."""
    if api_url:
        api = ex.urls.get("api")
        ex.urls["api"] = {k: api_url.rstrip("/") for k in api} if isinstance(api, dict) else api_url.rstrip("/")
    return ex


def make_public_exchange(exchange_id: str, api_url: str | None = None, timeout_ms: int = 10_000):
    """An asyncio ccxt client (REST) of ``exchange_id``'s swap markets for public market data (no keys);
    ``api_url`` replaces every base url. The caller closes it (``await ex.close()``).
    Raises ValueError for an id that is not a ccxt exchange."""
    import ccxt.async_support as ccxt_async

    refusal = unknown_exchange(exchange_id)
    if refusal:
        raise ValueError(refusal)
    opts = swap_options(exchange_id)
    return point_rest(getattr(ccxt_async, exchange_id)({"enableRateLimit": True, "timeout": timeout_ms,
                                                        "options": opts}), api_url)


def make_price_client(exchange_id: str, timeout_ms: int = 10_000):
    """A synchronous ccxt client of ``exchange_id`` with ccxt's default markets, for public prices (no keys).
    Raises ValueError for an id that is not a ccxt exchange."""
    import ccxt

    refusal = unknown_exchange(exchange_id)
    if refusal:
        raise ValueError(refusal)
    return getattr(ccxt, exchange_id)({"enableRateLimit": True, "timeout": timeout_ms})
