"""perpbot.intel: market intelligence from outside sources (like ``exchange/``, it talks to the world).

- :mod:`.context` — :class:`MarketContext`: one call for all of a symbol's market context
  (:class:`~perpbot.intel.snapshot.MarketSnapshot`, a status per part; never raises).
- :mod:`.coinglass` — CoinGlass v4: funding across venues, open interest and its changes,
  taker long/short ratio (range fallback), liquidation and open-interest history.
- :mod:`.feargreed` — alternative.me Crypto Fear & Greed Index.
- :mod:`.venue` — the venue itself through an injected ccxt client.
- :mod:`.micro`, :mod:`.refresh` — 1m micro-metrics (ATR(1m), volume profile), persisted and
  kept fresh in the background.
- :mod:`.sentiment` — news and social posts scored per symbol and hour (pluggable scorer).
- :mod:`.source`, :mod:`.http` — the cache / cooldown / retry / timeout machinery they share.

Imports only ``perpbot.types/config/logs/data/features`` and libraries; nothing in bot/, cli/,
api/, notify/ is imported here.
"""

from __future__ import annotations

from perpbot.intel.coinglass import CoinGlassClient, normalise_interval
from perpbot.intel.context import MarketContext
from perpbot.intel.feargreed import FearGreedClient
from perpbot.intel.micro import MicroMetrics, MicroSnapshot
from perpbot.intel.refresh import MicroRefresher
from perpbot.intel.snapshot import PARTS, MarketSnapshot, SourceStatus
from perpbot.intel.source import (
    CachedSource, Cooldown, SourceCooldown, SourceDown, SourceError, SourceKeyless, SourceNoData, SourceRejected,
    SourceUnauthorized,
)
from perpbot.intel.symbols import coin_of, perp_symbol
from perpbot.intel.venue import VenueClient

__all__ = [
    "PARTS", "CachedSource", "CoinGlassClient", "Cooldown", "FearGreedClient", "MarketContext", "MarketSnapshot",
    "MicroMetrics", "MicroRefresher", "MicroSnapshot", "SourceCooldown", "SourceDown", "SourceError",
    "SourceKeyless", "SourceNoData", "SourceRejected", "SourceStatus", "SourceUnauthorized", "VenueClient",
    "coin_of", "normalise_interval", "perp_symbol",
]
