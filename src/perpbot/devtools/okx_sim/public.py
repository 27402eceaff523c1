"""Public endpoints of the OKX facade: ``(method, path) -> handler(sim, params)`` returning the
``data`` list. Market data is the shared :class:`~perpbot.devtools.bitget_sim.market.ReplayMarket`'s
(only candles closed by the replay clock; mark = index = last close; a synthetic book).

GET /api/v5/public/time (the venue's wall clock: the signing clock), /public/instruments,
/market/candles and /market/history-candles (also mark-price-candles: the same prices),
/public/funding-rate-history, /public/funding-rate, /market/ticker, /public/mark-price,
/public/system-status.

Candles (OKX "Get candlesticks"): ``bar`` 1m 3m 5m 15m 30m 1H 2H 4H 6H 12H 1D 1W 1M and the
``utc`` forms 6Hutc 12Hutc 1Dutc 1Wutc 1Mutc (no finer than the replayed candles); ``after`` /
``before`` are exclusive bounds on the candle open; the newest ``limit`` (default 100, at most
300) first; rows ``[ts, o, h, l, c, vol (contracts), volCcy (SOL), volCcyQuote (USDT), confirm]``.
OKX also serves the candle in progress (confirm "0"): the simulator serves closed candles only.
Funding history (``after`` / ``before`` exclusive on fundingTime, newest first, limit <= 100):
``realizedRate`` = ``fundingRate`` = the replayed rate.
"""

from __future__ import annotations

from typing import Callable, Mapping, TypeVar

from perpbot.devtools.bitget_sim.errors import parse_int
from perpbot.devtools.bitget_sim.market import num
from perpbot.devtools.facade import route as add_route
from perpbot.devtools.facade import settled_funding
from perpbot.devtools.okx_sim.errors import OkxError, bad, empty
from perpbot.devtools.okx_sim.info import SYMBOLS, instrument

T = TypeVar("T")
PUBLIC: dict[tuple[str, str], Callable] = {}
BARS = ("1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "12H", "1D", "1W", "1M",
        "6Hutc", "12Hutc", "1Dutc", "1Wutc", "1Mutc")


def route(method: str, path: str, table: dict | None = None):
    """Decorator: register the handler as ``table[(method, "/api/v5/" + path)]`` (default :data:`PUBLIC`)."""
    return add_route(PUBLIC if table is None else table, method, "/api/v5/" + path)


def int_param(params: dict, key: str) -> int | None:
    """``params[key]`` as an int, None when absent or empty; 51000 when it is not an integer."""
    return parse_int(params, key, None, lambda k, _v: bad(k))


def limit_param(params: dict, default: int, most: int) -> int:
    n = int_param(params, "limit")
    return default if n is None else max(1, min(n, most))


def by_inst(table: Mapping[str, T], params: dict) -> T:
    """``table``'s entry (a market or an engine, by engine symbol) for ``params["instId"]``: 50014
    when it is absent, 51001 when the instrument is unknown or not in ``table``."""
    inst = params.get("instId") or ""
    if not inst:
        raise empty("instId")
    hit = table.get(SYMBOLS.get(inst, ""))
    if hit is None:
        raise OkxError("51001", "Instrument ID does not exist.")
    return hit


def market_of(sim, params: dict):
    """The market of ``params["instId"]`` (see :func:`by_inst`)."""
    return by_inst(sim.markets, params)


@route("GET", "public/time")
def server_time(sim, params):
    return [{"ts": str(sim.server_clock_ms())}]


@route("GET", "public/system-status")
def system_status(sim, params):
    return []


@route("GET", "public/instruments")
def instruments(sim, params):
    kind = params.get("instType")
    if not kind:
        raise empty("instType")
    if kind != "SWAP":
        return []  # the simulator lists USDT perpetual swaps only
    rows = [instrument(s) for s in sim.engines]
    inst = params.get("instId")
    return [r for r in rows if not inst or r["instId"] == inst]


def _candles(sim, params):
    m = market_of(sim, params)
    bar = params.get("bar") or "1m"
    if bar not in BARS:
        raise bad("bar")
    limit = limit_param(params, 100, 300)
    after, before = int_param(params, "after"), int_param(params, "before")
    try:
        rows = m.candles(bar, None if before is None else before + 1, after, limit, 300)
    except ValueError as exc:
        raise OkxError("51000", f"Parameter bar error ({exc})") from None
    out = [[ts, o, h, lo, c, vol, vol, qvol, "1"] for ts, o, h, lo, c, vol, qvol in rows]
    return out[::-1]


for _p in ("market/candles", "market/history-candles", "market/mark-price-candles",
           "market/history-mark-price-candles"):
    route("GET", _p)(_candles)


@route("GET", "public/funding-rate-history")
def funding_history(sim, params):
    m = market_of(sim, params)
    limit = limit_param(params, 100, 100)
    after, before = int_param(params, "after"), int_param(params, "before")
    rows = settled_funding(m, None if before is None else before + 1, None if after is None else after - 1)
    return [{"instType": "SWAP", "instId": params["instId"], "formulaType": "noRate", "fundingRate": num(rate),
             "realizedRate": num(rate), "fundingTime": str(t), "method": "current_period"}
            for t, rate in rows[::-1][:limit]]


@route("GET", "public/funding-rate")
def funding_rate(sim, params):
    m = market_of(sim, params)
    nxt = m.next_funding_ms()
    return [{"instType": "SWAP", "instId": params["instId"], "fundingRate": num(m.last_funding_rate()),
             "fundingTime": str(nxt), "nextFundingTime": str(nxt + 8 * 3_600_000), "minFundingRate": "-0.0075",
             "maxFundingRate": "0.0075", "settState": "settled", "settFundingRate": num(m.last_funding_rate()),
             "method": "current_period", "formulaType": "noRate", "premium": "0", "impactValue": "",
             "interestRate": "0", "sprdRate": "", "ts": str(m.now_ms)}]


@route("GET", "market/ticker")
def ticker(sim, params):
    m = market_of(sim, params)
    t = m.ticker()
    return [{"instType": "SWAP", "instId": params["instId"], "last": t["lastPr"], "lastSz": "1", "askPx": t["askPr"],
             "askSz": t["askSz"], "bidPx": t["bidPr"], "bidSz": t["bidSz"], "open24h": t["open24h"],
             "high24h": t["high24h"], "low24h": t["low24h"], "volCcy24h": t["baseVolume"], "vol24h": t["baseVolume"],
             "sodUtc0": t["openUtc"], "sodUtc8": t["openUtc"], "ts": str(m.now_ms)}]


@route("GET", "public/mark-price")
def mark_price(sim, params):
    m = market_of(sim, params)
    return [{"instType": "SWAP", "instId": params["instId"], "markPx": num(m.last), "ts": str(m.now_ms)}]
