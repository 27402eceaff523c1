"""Public REST endpoints of the Bitget simulator: path -> handler (private ones: ``private.py``).

Every handler takes ``(sim, params)`` (the :class:`~perpbot.devtools.bitget_sim.server.BitgetSim`
and the query / JSON body as a dict of strings) and returns the envelope's ``data``; it raises
:class:`~perpbot.devtools.bitget_sim.errors.SimError` to refuse. Handlers run under the
simulator's lock. Endpoint list (all under ``/api``):

public:  v2/public/time, v2/spot/public/coins, v2/mix/market/{contracts, candles, history-candles,
         history-mark-candles, history-index-candles, history-fund-rate, current-fund-rate,
         open-interest, ticker, tickers, merge-depth, query-position-lever}
private: v2/mix/account/{account, accounts, set-leverage, set-margin-mode, set-position-mode},
         v2/mix/order/{place-order, place-tpsl-order, place-plan-order, cancel-order,
         cancel-plan-order, orders-pending, orders-plan-pending, detail, orders-history,
         orders-plan-history, fills, fill-history}, v2/mix/position/{all-position, single-position}
"""

from __future__ import annotations

from typing import Callable

from perpbot.devtools.bitget_sim.errors import SimError, bad_param, parse_int
from perpbot.devtools.bitget_sim.market import CONTRACTS

PUBLIC: dict[tuple[str, str], Callable] = {}


def route(table: dict, method: str, path: str):
    def deco(fn):
        table[(method, "/api/" + path)] = fn
        return fn
    return deco


def _product(params: dict, required: bool = True) -> str | None:
    pt = params.get("productType")
    if pt is None:
        if required:
            raise SimError("40019", "Parameter productType cannot be empty")
        return None
    return pt.upper()


def _symbol(sim, params: dict) -> str:
    sym = params.get("symbol")
    if not sym:
        raise SimError("40019", "Parameter symbol cannot be empty")
    sym = sym.upper()
    if sym not in CONTRACTS:
        raise SimError("40034", f"Parameter {sym} does not exist")
    if _product(params) != "USDT-FUTURES":
        raise SimError("40099", "The exchange environment is incorrect (sim serves productType USDT-FUTURES)")
    return sym


def _market(sim, params: dict):
    sym = _symbol(sim, params)
    market = sim.markets.get(sym)
    if market is None:
        raise SimError("40034", f"no market data for {sym} in this simulator (it replays "
                                f"{', '.join(sim.markets)})")
    return market


# ---- public ------------------------------------------------------------------------------------
@route(PUBLIC, "GET", "v2/public/time")
def server_time(sim, params):
    return {"serverTime": str(sim.market.now_ms)}


@route(PUBLIC, "GET", "v2/spot/public/coins")
def coins(sim, params):
    """The coins of the served contracts, without chains (ccxt's load_markets asks for them)."""
    names = ["USDT"] + sorted({c["baseCoin"] for c in CONTRACTS.values()})
    return [{"coinId": str(k + 1), "coin": c, "transfer": "true", "chains": [], "areaCoin": "no"}
            for k, c in enumerate(names)]


@route(PUBLIC, "GET", "v2/mix/market/contracts")
def contracts(sim, params):
    if _product(params) != "USDT-FUTURES":
        return []
    sym = params.get("symbol")
    if sym:
        return [CONTRACTS[sym.upper()]] if sym.upper() in CONTRACTS else []
    return list(CONTRACTS.values())


def _candles(sim, params, max_limit: int, kind: str | None = None):
    m = _market(sim, params)
    gran = params.get("granularity")
    if not gran:
        raise SimError("40019", "Parameter granularity cannot be empty")
    limit = parse_int(params, "limit", 100)
    if limit > max_limit:
        raise bad_param(f"limit {limit} is above the maximum {max_limit}")
    try:
        return m.candles(gran, parse_int(params, "startTime"), parse_int(params, "endTime"), limit, max_limit,
                         kind or params.get("kLineType") or "MARKET")
    except ValueError as exc:
        raise bad_param(str(exc)) from None


@route(PUBLIC, "GET", "v2/mix/market/candles")
def candles(sim, params):
    return _candles(sim, params, 1000)


@route(PUBLIC, "GET", "v2/mix/market/history-candles")
def history_candles(sim, params):
    return _candles(sim, params, 200)


@route(PUBLIC, "GET", "v2/mix/market/history-mark-candles")
def history_mark_candles(sim, params):
    return _candles(sim, params, 200, "MARK")


@route(PUBLIC, "GET", "v2/mix/market/history-index-candles")
def history_index_candles(sim, params):
    return _candles(sim, params, 200, "INDEX")


@route(PUBLIC, "GET", "v2/mix/market/history-fund-rate")
def history_fund_rate(sim, params):
    m = _market(sim, params)
    size = parse_int(params, "pageSize", 20)
    page = parse_int(params, "pageNo", 1)
    if not 1 <= size <= 100 or page < 1:
        raise bad_param("pageSize must be in [1, 100] and pageNo >= 1")
    return m.funding_history(size, page)


@route(PUBLIC, "GET", "v2/mix/market/current-fund-rate")
def current_fund_rate(sim, params):
    return [_market(sim, params).current_funding()]


@route(PUBLIC, "GET", "v2/mix/market/open-interest")
def open_interest(sim, params):
    return _market(sim, params).open_interest()


@route(PUBLIC, "GET", "v2/mix/market/ticker")
def ticker(sim, params):
    return [_market(sim, params).ticker()]


@route(PUBLIC, "GET", "v2/mix/market/tickers")
def tickers(sim, params):
    if _product(params) != "USDT-FUTURES":
        return []
    return [m.ticker() for m in sim.markets.values()]


@route(PUBLIC, "GET", "v2/mix/market/merge-depth")
def merge_depth(sim, params):
    m = _market(sim, params)
    raw = params.get("limit") or "100"
    sizes = {"1": 1, "5": 5, "15": 15, "50": 50, "max": 100}
    if raw not in sizes and not raw.isdigit():
        raise bad_param(f"limit {raw!r} is not one of 1, 5, 15, 50, max")
    return m.depth(sizes.get(raw, min(int(raw), 100)))


@route(PUBLIC, "GET", "v2/mix/market/query-position-lever")
def position_lever(sim, params):
    sym = _symbol(sim, params)
    return [{**row, "symbol": sym} for row in sim.market.tiers()]  # one tier table for every symbol
