"""Typed answers of the market-context clients (frozen dataclasses, JSON-safe via ``to_dict``).

Units are in every field's comment. Times are tz-aware UTC datetimes; ``as_of`` is when
perpbot received the answer. Percent fields end in ``_pct`` (0.01 means 0.01 %), fractions do
not. USD amounts end in ``_usd``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "FearGreed", "FundingRates", "FundingVenue", "Liquidations", "LiquidationBar", "LongShortRatio", "OpenInterest",
    "OpenInterestBar", "OrderBook", "VenueFunding", "VenueOpenInterest", "VenueTicker", "jsonable",
]


def jsonable(value: Any) -> Any:
    """Datetimes to ISO strings, tuples to lists, NaN to None — recursively."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Dict:
    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))  # type: ignore[call-overload]


# ------------------------------------------------------------------------------ CoinGlass --
@dataclass(frozen=True)
class FundingVenue(_Dict):
    exchange: str                      # as CoinGlass names it, e.g. "Binance"
    rate_pct: float                    # current funding rate, percent per funding interval
    interval_hours: float | None       # funding interval, hours
    next_funding_time: datetime | None
    margin: str = "stablecoin"         # "stablecoin" (USDT/USD-margined) or "coin" (coin-margined)


@dataclass(frozen=True)
class FundingRates(_Dict):
    """Current funding rate of one coin on every venue CoinGlass lists."""

    coin: str
    venues: tuple[FundingVenue, ...]
    as_of: datetime

    def stablecoin(self) -> tuple[FundingVenue, ...]:
        return tuple(v for v in self.venues if v.margin == "stablecoin")

    @property
    def mean_rate_pct(self) -> float:
        """Mean funding rate over the USDT/USD-margined venues, percent per interval (NaN if none)."""
        rates = [v.rate_pct for v in self.stablecoin()]
        return sum(rates) / len(rates) if rates else math.nan

    def for_exchange(self, exchange: str) -> FundingVenue | None:
        """The USDT/USD-margined entry of ``exchange`` (case-insensitive) or None."""
        name = exchange.lower()
        return next((v for v in self.stablecoin() if v.exchange.lower() == name), None)


@dataclass(frozen=True)
class OpenInterest(_Dict):
    """Open interest of one coin over all venues (CoinGlass's ``"All"`` row) and per venue."""

    coin: str
    oi_usd: float                       # USD value of open interest, all venues
    oi_quantity: float                  # open interest in coins (base asset)
    change_pct: dict[str, float]        # change over "5m", "15m", "30m", "1h", "4h", "24h", percent
    by_exchange: tuple[tuple[str, float, float], ...]   # (exchange, oi_usd, 24 h change percent)
    as_of: datetime

    @property
    def change_24h_pct(self) -> float:
        return self.change_pct.get("24h", math.nan)


@dataclass(frozen=True)
class OpenInterestBar(_Dict):
    time: datetime
    open: float
    high: float
    low: float
    close: float                         # USD (unit="usd") or coins (unit="coin")


@dataclass(frozen=True)
class LongShortRatio(_Dict):
    """Taker buy/sell volume of one coin over ``range`` (CoinGlass's exchange taker ratio)."""

    coin: str
    range: str                          # the range that had data, e.g. "4h"
    buy_ratio_pct: float                # taker buy share of volume, percent
    sell_ratio_pct: float
    buy_vol_usd: float
    sell_vol_usd: float
    tried: tuple[str, ...]              # ranges asked, in order, ending with ``range``
    as_of: datetime

    @property
    def ratio(self) -> float:
        """Taker buy volume / taker sell volume (> 1: buyers more aggressive); NaN when no sells."""
        return self.buy_vol_usd / self.sell_vol_usd if self.sell_vol_usd > 0 else math.nan


@dataclass(frozen=True)
class LiquidationBar(_Dict):
    time: datetime                      # bar open time
    long_usd: float                     # long positions liquidated in the bar, USD
    short_usd: float


@dataclass(frozen=True)
class Liquidations(_Dict):
    coin: str
    interval: str                       # interval asked upstream (after normalisation)
    requested_interval: str
    bars: tuple[LiquidationBar, ...]    # oldest first
    as_of: datetime

    def total(self, last: int | None = None) -> tuple[float, float]:
        """(long USD, short USD) liquidated over the ``last`` bars (all bars when None)."""
        bars = self.bars if last is None else self.bars[-last:]
        return sum(b.long_usd for b in bars), sum(b.short_usd for b in bars)


# ---------------------------------------------------------------------------- Fear & Greed --
@dataclass(frozen=True)
class FearGreed(_Dict):
    value: int                          # 0 (extreme fear) .. 100 (extreme greed)
    classification: str                 # "Extreme Fear", "Fear", "Neutral", "Greed", "Extreme Greed"
    time: datetime                      # day the value belongs to (UTC)
    time_until_update_s: int | None = None   # only on the newest value


# ----------------------------------------------------------------------------------- venue --
@dataclass(frozen=True)
class VenueTicker(_Dict):
    symbol: str                         # ccxt unified symbol
    last: float | None                  # quote currency
    bid: float | None
    ask: float | None
    mark: float | None
    index: float | None
    quote_volume: float | None          # 24 h, quote currency
    change_pct: float | None            # 24 h price change, percent
    time: datetime | None

    @property
    def spread_bps(self) -> float:
        """(ask − bid) / mid in basis points (NaN when a side is missing)."""
        if not self.bid or not self.ask:
            return math.nan
        return (self.ask - self.bid) / ((self.ask + self.bid) / 2) * 1e4


@dataclass(frozen=True)
class VenueFunding(_Dict):
    symbol: str
    funding_rate: float                 # fraction per funding interval (0.0001 = 0.01 %)
    next_funding_time: datetime | None
    mark: float | None
    as_of: datetime


@dataclass(frozen=True)
class VenueOpenInterest(_Dict):
    symbol: str
    amount: float | None                # base asset
    value: float | None                 # quote currency
    as_of: datetime


@dataclass(frozen=True)
class OrderBook(_Dict):
    symbol: str
    bids: tuple[tuple[float, float], ...]   # (price, base qty), best first
    asks: tuple[tuple[float, float], ...]
    time: datetime | None
    as_of: datetime

    @property
    def mid(self) -> float:
        if not self.bids or not self.asks:
            return math.nan
        return (self.bids[0][0] + self.asks[0][0]) / 2

    @property
    def spread_bps(self) -> float:
        if not self.bids or not self.asks:
            return math.nan
        return (self.asks[0][0] - self.bids[0][0]) / self.mid * 1e4
