"""CoinGlass API v4 client: funding rates across venues, open interest and its 24 h change,
taker long/short ratio with range fallback, liquidation and open-interest history.

Protocol (https://docs.coinglass.com/reference/endpoint-overview, "Authentication",
"Errors & Rate Limits"): base ``https://open-api-v4.coinglass.com``, paths under ``/api``,
the key in the ``CG-API-KEY`` header; every answer is the envelope
``{"code": "0", "msg": "success", "data": ...}`` where ``code`` "0" is success and other codes
follow HTTP meanings (400 bad parameters, 401 missing/invalid key, 404, 405, 408 timeout,
422, 429 rate limit, 500). 401 is reported as ``unauthorized``; 408/429/500 are retried;
other codes are ``rejected``. Requests per minute depend on the plan (Hobbyist 30).

History endpoints accept ``interval`` in ``1m 3m 5m 15m 30m 1h 4h 6h 8h 12h 1d 1w`` with a
plan-dependent minimum (Hobbyist ``>=4h``, Startup ``>=30m``, Standard and above none): an
interval below the plan's minimum, or not offered, is normalised *up* to the next offered one
(:func:`normalise_interval`). Answers of endpoints of 4 h resolution or coarser are cached for
their interval (capped at 24 h); the others for the client's ``ttl``.

The key is taken from the caller (``Settings.coinglass_api_key``, i.e. the environment
variable ``PERPBOT_COINGLASS_API_KEY``); without one every method raises
:class:`~perpbot.intel.source.SourceKeyless` without a request. Percent values stay percents as
CoinGlass sends them (``*_pct`` fields): CoinGlass funding rates are percent per interval
(its documented Binance BTC example 0.007343 is 0.0073 %, the usual 0.01 % baseline scale).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from perpbot.intel.http import JsonHttp
from perpbot.intel.models import (
    FundingRates, FundingVenue, LiquidationBar, Liquidations, LongShortRatio, OpenInterest, OpenInterestBar,
)
from perpbot.intel.source import (
    CachedSource, SourceKeyless, SourceNoData, SourceRejected, SourceUnauthorized, TransientError,
)
from perpbot.intel.symbols import coin_of

__all__ = [
    "COINGLASS_BASE_URL", "INTERVALS", "LSR_RANGES", "PLAN_MIN_INTERVAL", "CoinGlassClient", "interval_seconds",
    "normalise_interval",
]

COINGLASS_BASE_URL = "https://open-api-v4.coinglass.com"
#: Intervals the v4 history endpoints accept, finest first.
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "4h", "6h", "8h", "12h", "1d", "1w")
#: Finest interval each API plan may ask of the history endpoints.
PLAN_MIN_INTERVAL = {"hobbyist": "4h", "startup": "30m", "standard": "1m", "professional": "1m", "enterprise": "1m"}
#: Ranges of the exchange taker buy/sell ratio endpoint.
LSR_RANGES = ("5m", "15m", "30m", "1h", "4h", "12h", "24h")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_OI_CHANGES = ("5m", "15m", "30m", "1h", "4h", "24h")
_RETRY_CODES = {"408", "429", "500", "502", "503", "504"}


def interval_seconds(interval: str) -> int:
    """Seconds of an interval like ``"15m"``, ``"4h"``, ``"1d"``, ``"1w"``; ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", str(interval).lower())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"interval {interval!r} is not like 15m, 4h, 1d or 1w")
    return int(m.group(1)) * _UNIT[m.group(2)]


def normalise_interval(interval: str, plan: str = "hobbyist") -> str:
    """The offered interval CoinGlass accepts for ``interval`` on ``plan``: the finest one that
    is >= both ``interval`` and the plan's minimum (``"1w"`` for anything coarser).

    Raises:
        ValueError: an unreadable interval or an unknown plan.
    """
    if plan not in PLAN_MIN_INTERVAL:
        raise ValueError(f"unknown CoinGlass plan {plan!r}; one of {', '.join(PLAN_MIN_INTERVAL)}")
    want = max(interval_seconds(interval), interval_seconds(PLAN_MIN_INTERVAL[plan]))
    return next((i for i in INTERVALS if interval_seconds(i) >= want), INTERVALS[-1])


def _num(value: Any) -> float:
    """CoinGlass numbers arrive as numbers or strings; missing -> NaN."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _time(ms: Any) -> datetime | None:
    v = _num(ms)
    return None if not math.isfinite(v) or v <= 0 else datetime.fromtimestamp(v / 1000.0, UTC)


def _unwrap(body: Any, path: str) -> Any:
    if not isinstance(body, dict) or "code" not in body:
        raise SourceRejected("coinglass", f"the answer of {path} is not a CoinGlass envelope")
    code = str(body.get("code"))
    if code == "0":
        return body.get("data")
    msg = " ".join(str(body.get("msg") or "").split())[:160]
    if code in ("401", "403"):
        raise SourceUnauthorized("coinglass", f"code {code} on {path}: {msg or 'API key missing or refused'}")
    if code in _RETRY_CODES:
        raise TransientError(f"CoinGlass code {code} on {path}: {msg}")
    raise SourceRejected("coinglass", f"code {code} on {path}: {msg}")


class CoinGlassClient:
    """Async CoinGlass v4 client (module docstring). Close it with :meth:`aclose`.

    Args:
        api_key: the ``CG-API-KEY`` value (str or pydantic SecretStr); None -> keyless.
        base_url: API root (tests point it at a local fake server).
        plan: API plan, for the interval minimum: hobbyist, startup, standard, professional, enterprise.
        exchanges: venues of the aggregated history endpoints (``exchange_list``).
        lsr_ranges: ranges tried in order by :meth:`long_short_ratio` until one has data.
        ttl, cooldown, retries, timeout, backoff, clock: see :class:`~perpbot.intel.source.CachedSource`.
        client: an httpx.AsyncClient to use (its base URL and headers are the caller's business).
    """

    def __init__(self, api_key: str | SecretStr | None, *, base_url: str = COINGLASS_BASE_URL,
                 plan: str = "hobbyist", exchanges: Sequence[str] = ("Binance", "OKX", "Bybit"),
                 lsr_ranges: Sequence[str] = ("4h", "1h", "12h", "24h"), ttl: float = 60.0, cooldown: float = 30.0,
                 retries: int = 2, timeout: float = 5.0, backoff: float = 0.25,
                 clock: Callable[[], float] = time.monotonic, client: httpx.AsyncClient | None = None) -> None:
        if plan not in PLAN_MIN_INTERVAL:
            raise ValueError(f"unknown CoinGlass plan {plan!r}; one of {', '.join(PLAN_MIN_INTERVAL)}")
        bad = [r for r in lsr_ranges if r not in LSR_RANGES]
        if bad or not lsr_ranges:
            raise ValueError(f"long/short ranges must be some of {', '.join(LSR_RANGES)}, got {list(lsr_ranges)}")
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._has_key = bool(key and key.strip())
        self.plan = plan
        self.exchanges = tuple(exchanges)
        self.lsr_ranges = tuple(lsr_ranges)
        self.http = JsonHttp("coinglass", base_url, headers={"CG-API-KEY": key.strip()} if self._has_key else {},
                             timeout=timeout, client=client)
        self.source = CachedSource("coinglass", ttl=ttl, cooldown=cooldown, retries=retries, timeout=timeout,
                                   backoff=backoff, clock=clock)

    @property
    def has_key(self) -> bool:
        return self._has_key

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _data(self, endpoint: str, path: str, params: dict[str, Any], *, symbol: str | None,
                    ttl: float | None = None) -> tuple[Any, datetime]:
        """(``data`` of the envelope, UTC time it was received) — cached per endpoint and parameters."""
        if not self._has_key:
            raise SourceKeyless("coinglass", "no API key: set PERPBOT_COINGLASS_API_KEY")

        async def fetch() -> tuple[Any, datetime]:
            return _unwrap(await self.http.get_json(path, params), path), datetime.now(UTC)

        key = (endpoint, *sorted(params.items()))
        return await self.source.get(key, fetch, symbol=symbol, ttl=ttl)

    def _history_ttl(self, interval: str) -> float | None:
        secs = interval_seconds(interval)
        return float(min(secs, 86400)) if secs >= 4 * 3600 else None

    # ---------------------------------------------------------------------- endpoints --
    async def funding_rates(self, symbol: str) -> FundingRates:
        """Current funding rate of ``symbol``'s coin on every venue.

        ``GET /api/futures/funding-rate/exchange-list`` (no parameters; one answer lists every
        coin, so one cached request serves all symbols): ``data[]`` of ``{symbol,
        stablecoin_margin_list[], token_margin_list[]}``, each entry ``{exchange,
        funding_rate_interval (h), funding_rate (%), next_funding_time (ms)}``.
        Docs: https://docs.coinglass.com/reference/fr-exchange-list
        """
        coin = coin_of(symbol)
        data, received = await self._data("funding", "/api/futures/funding-rate/exchange-list", {}, symbol=None)
        row = next((r for r in data or [] if isinstance(r, dict) and str(r.get("symbol", "")).upper() == coin), None)
        if row is None:
            raise SourceNoData("coinglass", f"no funding rates for {coin}")
        venues = []
        for margin, key in (("stablecoin", "stablecoin_margin_list"), ("coin", "token_margin_list")):
            for e in row.get(key) or []:
                rate = _num(e.get("funding_rate"))
                if math.isfinite(rate):
                    interval = _num(e.get("funding_rate_interval"))
                    venues.append(FundingVenue(exchange=str(e.get("exchange", "?")), rate_pct=rate,
                                               interval_hours=interval if math.isfinite(interval) else None,
                                               next_funding_time=_time(e.get("next_funding_time")), margin=margin))
        if not venues:
            raise SourceNoData("coinglass", f"no funding rates for {coin}")
        return FundingRates(coin=coin, venues=tuple(venues), as_of=received)

    async def open_interest(self, symbol: str) -> OpenInterest:
        """Open interest of ``symbol``'s coin, all venues and per venue, with its changes.

        ``GET /api/futures/open-interest/exchange-list?symbol=SOL``: ``data[]`` of
        ``{exchange ("All" = aggregate), symbol, open_interest_usd, open_interest_quantity,
        open_interest_change_percent_{5m,15m,30m,1h,4h,24h} (%)}``.
        Docs: https://docs.coinglass.com/reference/oi-exchange-list
        """
        coin = coin_of(symbol)
        data, received = await self._data("open_interest", "/api/futures/open-interest/exchange-list",
                                          {"symbol": coin}, symbol=coin)
        rows = [r for r in data or [] if isinstance(r, dict)]
        if not rows:
            raise SourceNoData("coinglass", f"no open interest for {coin}")
        total = next((r for r in rows if str(r.get("exchange", "")).lower() == "all"), None)
        venues = [r for r in rows if r is not total]
        if total is None:
            total = {"open_interest_usd": sum(_num(r.get("open_interest_usd")) for r in venues),
                     "open_interest_quantity": sum(_num(r.get("open_interest_quantity")) for r in venues)}
        change = {k: _num(total.get(f"open_interest_change_percent_{k}")) for k in _OI_CHANGES}
        by = tuple((str(r.get("exchange", "?")), _num(r.get("open_interest_usd")),
                    _num(r.get("open_interest_change_percent_24h"))) for r in venues)
        return OpenInterest(coin=coin, oi_usd=_num(total.get("open_interest_usd")),
                            oi_quantity=_num(total.get("open_interest_quantity")), change_pct=change, by_exchange=by,
                            as_of=received)

    async def long_short_ratio(self, symbol: str, ranges: Sequence[str] | None = None) -> LongShortRatio:
        """Taker buy/sell ratio of ``symbol``'s coin over the first range with data.

        ``GET /api/futures/taker-buy-sell-volume/exchange-list?symbol=SOL&range=4h``: ``data``
        = ``{symbol, buy_ratio (%), sell_ratio (%), buy_vol_usd, sell_vol_usd, exchange_list[]}``.
        A range "has no data" when ``data`` is empty or its buy + sell volume is not > 0 (or the
        range is refused); the next range of ``ranges`` (default: the client's) is tried.
        Docs: https://docs.coinglass.com/reference/taker-buysell-volume-exchange-list

        Raises:
            SourceNoData: no range had data. Other SourceErrors (down, unauthorized...) stop the
            fallback at once.
        """
        coin = coin_of(symbol)
        tried: list[str] = []
        for rng in ranges or self.lsr_ranges:
            tried.append(rng)
            try:
                data, received = await self._data(f"long_short/{rng}",
                                                  "/api/futures/taker-buy-sell-volume/exchange-list",
                                                  {"symbol": coin, "range": rng}, symbol=coin)
            except (SourceNoData, SourceRejected):
                continue
            if not isinstance(data, dict):
                continue
            buy, sell = _num(data.get("buy_vol_usd")), _num(data.get("sell_vol_usd"))
            if not (math.isfinite(buy) and math.isfinite(sell)) or buy + sell <= 0:
                continue
            buy_pct, sell_pct = _num(data.get("buy_ratio")), _num(data.get("sell_ratio"))
            if not math.isfinite(buy_pct):
                buy_pct, sell_pct = buy / (buy + sell) * 100, sell / (buy + sell) * 100
            return LongShortRatio(coin=coin, range=rng, buy_ratio_pct=buy_pct, sell_ratio_pct=sell_pct,
                                  buy_vol_usd=buy, sell_vol_usd=sell, tried=tuple(tried), as_of=received)
        raise SourceNoData("coinglass", f"no taker buy/sell data for {coin} over {', '.join(tried)}")

    async def liquidations(self, symbol: str, interval: str = "4h", limit: int = 30) -> Liquidations:
        """Long and short liquidations of ``symbol``'s coin per bar, over the client's exchanges.

        ``GET /api/futures/liquidation/aggregated-history?exchange_list=Binance,OKX&symbol=SOL
        &interval=4h&limit=30``: ``data[]`` of ``{time (ms), aggregated_long_liquidation_usd,
        aggregated_short_liquidation_usd}``. ``interval`` is normalised to the plan
        (:func:`normalise_interval`). Docs: https://docs.coinglass.com/reference/aggregated-liquidation-history
        """
        coin = coin_of(symbol)
        iv = normalise_interval(interval, self.plan)
        params = {"exchange_list": ",".join(self.exchanges), "symbol": coin, "interval": iv,
                  "limit": max(1, min(int(limit), 1000))}
        data, received = await self._data("liquidations", "/api/futures/liquidation/aggregated-history", params,
                                          symbol=coin, ttl=self._history_ttl(iv))
        bars = sorted((LiquidationBar(time=t, long_usd=_num(r.get("aggregated_long_liquidation_usd")),
                                      short_usd=_num(r.get("aggregated_short_liquidation_usd")))
                       for r in data or [] if isinstance(r, dict) and (t := _time(r.get("time"))) is not None),
                      key=lambda b: b.time)
        if not bars:
            raise SourceNoData("coinglass", f"no liquidation history for {coin} at {iv}")
        return Liquidations(coin=coin, interval=iv, requested_interval=interval, bars=tuple(bars), as_of=received)

    async def open_interest_history(self, symbol: str, interval: str = "4h", limit: int = 30,
                                    unit: str = "usd") -> tuple[OpenInterestBar, ...]:
        """Aggregated open-interest OHLC bars of ``symbol``'s coin, oldest first.

        ``GET /api/futures/open-interest/aggregated-history?symbol=SOL&interval=4h&limit=30
        &unit=usd``: ``data[]`` of ``{time (ms), open, high, low, close}`` (strings; USD or coins
        by ``unit``). Docs: https://docs.coinglass.com/reference/oi-ohlc-aggregated-history
        """
        if unit not in ("usd", "coin"):
            raise ValueError(f"unit must be 'usd' or 'coin', got {unit!r}")
        coin = coin_of(symbol)
        iv = normalise_interval(interval, self.plan)
        params = {"symbol": coin, "interval": iv, "limit": max(1, min(int(limit), 1000)), "unit": unit}
        data, _ = await self._data("open_interest_history", "/api/futures/open-interest/aggregated-history",
                                   params, symbol=coin, ttl=self._history_ttl(iv))
        bars = sorted((OpenInterestBar(time=t, open=_num(r.get("open")), high=_num(r.get("high")),
                                       low=_num(r.get("low")), close=_num(r.get("close")))
                       for r in data or [] if isinstance(r, dict) and (t := _time(r.get("time"))) is not None),
                      key=lambda b: b.time)
        if not bars:
            raise SourceNoData("coinglass", f"no open-interest history for {coin} at {iv}")
        return tuple(bars)

