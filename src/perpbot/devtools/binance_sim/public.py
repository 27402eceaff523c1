"""Public ``/fapi`` endpoints of the Binance facade: ``(method, path) -> handler(sim, params)``.

Handlers return the JSON body and raise :class:`~perpbot.devtools.binance_sim.errors.BinanceError`.
Market data is the shared :class:`~perpbot.devtools.bitget_sim.market.ReplayMarket`'s (only
candles closed by the replay clock; models in its docstring: mark = index = last close, a
synthetic book). Endpoints: GET /fapi/v1/ping, time, exchangeInfo, klines (also markPriceKlines
/ indexPriceKlines: the same prices), premiumIndex, fundingRate, ticker/24hr, ticker/price,
ticker/bookTicker, depth, openInterest.

Rules (Binance "Kline/Candlestick Data"): ``interval`` 1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d 3d 1w
1M (8h is not served: -1120), no finer than the replayed candles; ``limit`` default 500, at most
1500; with ``startTime`` the first ``limit`` candles opening at or after it, else the last
``limit`` opening at or before ``endTime`` (default now); ``closeTime`` = next open - 1 ms.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from perpbot.devtools.binance_sim.errors import BinanceError, invalid, missing
from perpbot.devtools.binance_sim.info import exchange_info
from perpbot.devtools.bitget_sim.errors import parse_int
from perpbot.devtools.bitget_sim.market import GRANULARITY_MS, MONTH, num
from perpbot.devtools.facade import candle_window, pick, route, settled_funding

PUBLIC: dict[tuple[str, str], Callable] = {}

INTERVALS = {"1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1H", "2h": "2H", "4h": "4H",
             "6h": "6Hutc", "12h": "12Hutc", "1d": "1Dutc", "3d": "3Dutc", "1w": "1Wutc", "1M": "1Mutc"}


def int_param(params: dict, key: str, default: int | None = None) -> int | None:
    """``params[key]`` as an int, ``default`` when absent or empty; -1130 when it is not an integer."""
    return parse_int(params, key, default, lambda k, _v: invalid(k))


def limit_param(params: dict, default: int, most: int) -> int:
    n = int_param(params, "limit", default)
    if n is None or not 1 <= n <= most:
        raise invalid("limit", f"limit must be in [1, {most}]")
    return n


def market_of(sim, params: dict, required: bool = True):
    """The market of ``params["symbol"]``: -1102 when absent (None when not ``required``), -1121 unknown."""
    return pick(sim.markets, (params.get("symbol") or "").upper(), missing("symbol") if required else None,
                BinanceError(-1121, "Invalid symbol."))


@route(PUBLIC, "GET", "/fapi/v1/ping")
def ping(sim, params):
    return {}


@route(PUBLIC, "GET", "/fapi/v1/time")
def server_time(sim, params):
    return {"serverTime": sim.server_clock_ms()}  # the signing clock (see the package docstring)


@route(PUBLIC, "GET", "/fapi/v1/exchangeInfo")
def exchange_info_route(sim, params):
    return exchange_info(list(sim.engines), sim.market.now_ms)


def _klines(sim, params, kind: str):
    m = market_of(sim, params)
    interval = params.get("interval")
    if not interval:
        raise missing("interval")
    gran = INTERVALS.get(interval)
    if gran is None:
        raise BinanceError(-1120, "Invalid interval.")
    limit = limit_param(params, 500, 1500)
    step = GRANULARITY_MS[gran]
    try:
        rows = candle_window(m, gran, int_param(params, "startTime"), int_param(params, "endTime"), limit, kind)
    except ValueError as exc:
        raise BinanceError(-1120, f"Invalid interval. ({exc})") from None
    out = []
    for ts, o, h, lo, c, vol, qvol in rows:
        t = int(ts)
        close = (t + step if step != MONTH else m.candle_close_ms(gran, t)) - 1
        out.append([t, o, h, lo, c, vol, close, qvol, 0, "0", "0", "0"])
    return out


@route(PUBLIC, "GET", "/fapi/v1/klines")
def klines(sim, params):
    return _klines(sim, params, "MARKET")


@route(PUBLIC, "GET", "/fapi/v1/markPriceKlines")
def mark_klines(sim, params):
    return _klines(sim, params, "MARK")


@route(PUBLIC, "GET", "/fapi/v1/indexPriceKlines")
def index_klines(sim, params):
    return _klines(sim, {**params, "symbol": params.get("pair") or params.get("symbol")}, "INDEX")


def _premium(m) -> dict:
    last = num(m.last)
    return {"symbol": m.symbol, "markPrice": last, "indexPrice": last, "estimatedSettlePrice": last,
            "lastFundingRate": num(m.last_funding_rate()), "interestRate": "0.00010000",
            "nextFundingTime": m.next_funding_ms(), "time": m.now_ms}


@route(PUBLIC, "GET", "/fapi/v1/premiumIndex")
def premium_index(sim, params):
    m = market_of(sim, params, required=False)
    return _premium(m) if m is not None else [_premium(x) for x in sim.markets.values()]


@route(PUBLIC, "GET", "/fapi/v1/fundingRate")
def funding_rate(sim, params):
    """Settled funding events (fundingTime <= now), ascending; markPrice = the candle open then."""
    ms = [market_of(sim, params)] if params.get("symbol") else list(sim.markets.values())
    limit = limit_param(params, 100, 1000)
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    out = []
    for m in ms:
        for t, rate in settled_funding(m, start, end):
            j = min(max(int(np.searchsorted(m.ts, t, side="right")) - 1, 0), m.n - 1)
            out.append({"symbol": m.symbol, "fundingTime": t, "fundingRate": num(rate), "markPrice": num(m.o[j])})
    out.sort(key=lambda r: r["fundingTime"])
    return out[:limit] if start is not None else out[-limit:]


def _ticker24(m) -> dict:
    t = m.ticker()
    last, open24 = float(t["lastPr"]), float(t["open24h"])
    base, quote = float(t["baseVolume"]), float(t["quoteVolume"])
    return {"symbol": m.symbol, "priceChange": num(last - open24), "priceChangePercent": num(round((last / open24 - 1) * 100, 3)),
            "weightedAvgPrice": num(round(quote / base, 8) if base else last), "lastPrice": t["lastPr"], "lastQty": "0",
            "openPrice": t["open24h"], "highPrice": t["high24h"], "lowPrice": t["low24h"], "volume": t["baseVolume"],
            "quoteVolume": t["quoteVolume"], "openTime": m.now_ms - 86_400_000, "closeTime": m.now_ms - 1,
            "firstId": 0, "lastId": 0, "count": 0}


def _each(sim, params, fn):
    m = market_of(sim, params, required=False)
    return fn(m) if m is not None else [fn(x) for x in sim.markets.values()]


@route(PUBLIC, "GET", "/fapi/v1/ticker/24hr")
def ticker_24hr(sim, params):
    return _each(sim, params, _ticker24)


@route(PUBLIC, "GET", "/fapi/v1/ticker/price")
def ticker_price(sim, params):
    return _each(sim, params, lambda m: {"symbol": m.symbol, "price": num(m.last), "time": m.now_ms})


@route(PUBLIC, "GET", "/fapi/v1/ticker/bookTicker")
def book_ticker(sim, params):
    def row(m):
        bid, ask, unit = m.book_top()
        return {"symbol": m.symbol, "bidPrice": num(bid), "bidQty": num(unit), "askPrice": num(ask),
                "askQty": num(unit), "time": m.now_ms, "lastUpdateId": m.now_ms}
    return _each(sim, params, row)


@route(PUBLIC, "GET", "/fapi/v1/depth")
def depth(sim, params):
    m = market_of(sim, params)
    limit = int_param(params, "limit", 500)
    if limit not in (5, 10, 20, 50, 100, 500, 1000):
        raise invalid("limit", "limit must be one of 5, 10, 20, 50, 100, 500, 1000")
    book = m.depth(limit)
    return {"lastUpdateId": m.now_ms, "E": m.now_ms, "T": m.now_ms, "bids": book["bids"], "asks": book["asks"]}


@route(PUBLIC, "GET", "/fapi/v1/openInterest")
def open_interest(sim, params):
    m = market_of(sim, params)
    return {"symbol": m.symbol, "openInterest": num(m.open_interest_size()), "time": m.now_ms}
