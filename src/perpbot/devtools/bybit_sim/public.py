"""Public ``/v5/market`` endpoints of the Bybit facade: ``(method, path) -> handler(sim, params)``.

Handlers return the envelope's ``result`` and raise :class:`~perpbot.devtools.bybit_sim.errors.BybitError`.
Market data is the shared :class:`~perpbot.devtools.bitget_sim.market.ReplayMarket`'s (only candles
closed by the replay clock; mark = index = last close, a synthetic book). Endpoints: GET
/v5/market/time, instruments-info, kline, mark-price-kline, index-price-kline, tickers,
funding/history, orderbook. ``category`` must be ``linear`` (the simulator serves USDT perpetuals).

Rules (Bybit "Get Kline"): ``interval`` 1 3 5 15 30 60 120 240 360 720 D W M, no finer than the
replayed candles; ``limit`` [1, 1000], default 200; the list newest first; with ``start`` the first
``limit`` candles opening at or after it (and at or before ``end``), else the last ``limit`` opening
at or before ``end`` (default now). Funding history (Bybit "Get Funding Rate History"): newest first,
``limit`` [1, 200]; ``startTime`` alone is refused; ``endTime`` alone: the ``limit`` events up to it.
"""

from __future__ import annotations

from typing import Callable

from perpbot.devtools.bitget_sim.errors import parse_int
from perpbot.devtools.bitget_sim.market import num
from perpbot.devtools.bybit_sim.errors import BybitError, bad
from perpbot.devtools.bybit_sim.info import instrument
from perpbot.devtools.facade import candle_window, pick, route, settled_funding

PUBLIC: dict[tuple[str, str], Callable] = {}
INTERVALS = {"1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m", "60": "1H", "120": "2H", "240": "4H",
             "360": "6Hutc", "720": "12Hutc", "D": "1Dutc", "W": "1Wutc", "M": "1Mutc"}


def int_param(params: dict, key: str, default: int | None = None) -> int | None:
    """``params[key]`` as an int, ``default`` when absent or empty; 10001 when it is not an integer."""
    return parse_int(params, key, default, lambda k, _v: bad(f"{k} must be an integer"))


def limit_param(params: dict, default: int, most: int, key: str = "limit") -> int:
    n = int_param(params, key, default)
    if n is None or not 1 <= n <= most:
        raise bad(f"{key} must be in [1, {most}]")
    return n


def linear(params: dict) -> None:
    cat = params.get("category")
    if cat not in (None, "", "linear"):
        raise bad(f"category {cat!r}: the simulator serves linear (USDT perpetuals) only")


def market_of(sim, params: dict, required: bool = True):
    """The market of ``params["symbol"]``: 10001 when absent (None when not ``required``) or unknown."""
    return pick(sim.markets, (params.get("symbol") or "").upper(), bad("symbol is required") if required else None,
                BybitError(10001, "params error: symbol invalid"))


@route(PUBLIC, "GET", "/v5/market/time")
def server_time(sim, params):
    t = sim.server_clock_ms()  # the signing clock (see the package docstring)
    return {"timeSecond": str(t // 1000), "timeNano": str(t * 1_000_000)}


@route(PUBLIC, "GET", "/v5/market/instruments-info")
def instruments(sim, params):
    linear(params)
    if params.get("status") not in (None, "", "Trading"):  # ccxt asks for PreLaunch markets too: none here
        return {"category": "linear", "list": [], "nextPageCursor": ""}
    syms = list(sim.engines)
    if params.get("symbol"):
        syms = [s for s in syms if s == params["symbol"].upper()]
    return {"category": "linear", "list": [instrument(s) for s in syms], "nextPageCursor": ""}


def _klines(sim, params, kind: str):
    linear(params)
    m = market_of(sim, params)
    gran = INTERVALS.get(params.get("interval") or "")
    if gran is None:
        raise bad("interval invalid")
    limit = limit_param(params, 200, 1000)
    try:
        rows = candle_window(m, gran, int_param(params, "start"), int_param(params, "end"), limit, kind)
    except ValueError as exc:
        raise bad(f"interval invalid ({exc})") from None
    if kind != "MARKET":
        return {"category": "linear", "symbol": m.symbol, "list": [r[:5] for r in reversed(rows)]}
    return {"category": "linear", "symbol": m.symbol, "list": [list(r) for r in reversed(rows)]}


@route(PUBLIC, "GET", "/v5/market/kline")
def kline(sim, params):
    return _klines(sim, params, "MARKET")


@route(PUBLIC, "GET", "/v5/market/mark-price-kline")
def mark_kline(sim, params):
    return _klines(sim, params, "MARK")


@route(PUBLIC, "GET", "/v5/market/index-price-kline")
def index_kline(sim, params):
    return _klines(sim, params, "INDEX")


def _ticker(m) -> dict:
    t = m.ticker()
    bid, ask, unit = m.book_top()
    last, open24 = float(t["lastPr"]), float(t["open24h"])
    return {"symbol": m.symbol, "lastPrice": t["lastPr"], "indexPrice": t["lastPr"], "markPrice": t["lastPr"],
            "prevPrice24h": t["open24h"], "price24hPcnt": num(round(last / open24 - 1, 6)), "highPrice24h": t["high24h"],
            "lowPrice24h": t["low24h"], "prevPrice1h": t["lastPr"], "openInterest": num(m.open_interest_size()),
            "openInterestValue": num(m.open_interest_size() * last), "turnover24h": t["quoteVolume"],
            "volume24h": t["baseVolume"], "fundingRate": num(m.last_funding_rate()),
            "nextFundingTime": str(m.next_funding_ms()), "predictedDeliveryPrice": "", "basisRate": "",
            "deliveryFeeRate": "", "deliveryTime": "0", "ask1Size": num(unit), "bid1Price": num(bid),
            "ask1Price": num(ask), "bid1Size": num(unit), "basis": "", "fundingIntervalHour": "8"}


@route(PUBLIC, "GET", "/v5/market/tickers")
def tickers(sim, params):
    linear(params)
    m = market_of(sim, params, required=False)
    rows = [m] if m is not None else list(sim.markets.values())
    return {"category": "linear", "list": [_ticker(x) for x in rows]}


@route(PUBLIC, "GET", "/v5/market/funding/history")
def funding_history(sim, params):
    """Settled funding events (fundingRateTimestamp <= now), newest first."""
    linear(params)
    m = market_of(sim, params)
    limit = limit_param(params, 200, 200)
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    if start is not None and end is None:
        raise bad("Passing only startTime is not supported; pass endTime too")
    rows = settled_funding(m, start, end)[-limit:][::-1]
    return {"category": "linear", "list": [{"symbol": m.symbol, "fundingRate": num(r), "fundingRateTimestamp": str(t)}
                                           for t, r in rows]}


@route(PUBLIC, "GET", "/v5/market/orderbook")
def orderbook(sim, params):
    linear(params)
    m = market_of(sim, params)
    limit = limit_param(params, 25, 500)
    book = m.depth(limit)
    return {"s": m.symbol, "b": book["bids"], "a": book["asks"], "ts": m.now_ms, "u": m.now_ms, "seq": m.now_ms,
            "cts": m.now_ms}
