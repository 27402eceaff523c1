"""What the venue facades over the Bitget simulator share: :class:`ProtocolFacade` (the server half)
and the request helpers of their endpoint modules.

A facade (:mod:`~perpbot.devtools.binance_sim`, :mod:`~perpbot.devtools.bybit_sim`,
:mod:`~perpbot.devtools.okx_sim`) keeps the Bitget simulator's engine, wallet, replay market,
faults and server thread (:class:`~perpbot.devtools.bitget_sim.server.BitgetSim`) and speaks
another venue's REST protocol on 127.0.0.1 (no websocket). Its package gives only the protocol's
specifics: the route tables (``PUBLIC``, ``SIGNED``: ``(method, path) -> handler(sim, params)``),
the known symbols (``KNOWN``), the contract rules (:meth:`ProtocolFacade.contract_spec`), the
authentication (:meth:`ProtocolFacade._verify`), the parameter decoding, the error class (a
:class:`VenueError`) with its translation of the engine's Bitget :class:`SimError` codes, and the
answer envelopes (:meth:`ProtocolFacade._ok`, ``_refuse``, ``_not_found``, ``_rate_limited``).
"""

from __future__ import annotations

import json
from typing import Callable, Mapping, TypeVar
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
from aiohttp import web

from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.bitget_sim.market import GRANULARITY_MS, MONTH
from perpbot.devtools.bitget_sim.server import BitgetSim

T = TypeVar("T")


class VenueError(Exception):
    """A request a facade refuses, in its venue's terms: ``code`` (the venue's error code), ``msg``,
    HTTP ``status``; :meth:`body` is the JSON answer ``{"code": code, "msg": msg}`` (a venue with
    another shape overrides it, or the facade's ``_refuse``)."""

    def __init__(self, code, msg: str, status: int) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


class ProtocolFacade(BitgetSim):
    """The Bitget simulator behind another venue's REST protocol (see the module docstring).

    Args: as :class:`~perpbot.devtools.bitget_sim.server.BitgetSim` (``candles``, ``funding``,
    ``mark``, ``start_bar``, ``symbol``, ``capital`` USDT, ``slippage`` fraction, ``leverage``,
    ``api_key`` (default ``sim-key-`` + 12 random hex digits), ``api_secret``, ``tradable``);
    market orders fill at once at the last close (``market_fill="last_close"``); no ``others``.
    Raises ValueError for ``symbol`` or a ``tradable`` symbol not in :attr:`KNOWN`, and as
    BitgetSim for bad arguments.
    """

    VENUE = "the venue's"
    #: the symbols the venue's rules are known for (engine ids: "SOLUSDT")
    KNOWN: Mapping[str, object] = {}
    #: (method, path) -> handler(sim, params): the unsigned endpoints, then the signed ones
    PUBLIC: Mapping[tuple[str, str], Callable] = {}
    SIGNED: Mapping[tuple[str, str], Callable] = {}

    def __init__(self, candles: pd.DataFrame, funding: pd.DataFrame | None = None, mark: pd.DataFrame | None = None,
                 start_bar: int | None = None, symbol: str = "SOLUSDT", capital: float = 1000.0,
                 slippage: float = 0.0, leverage: int = 10, api_key: str | None = None,
                 api_secret: str = "sim-secret", tradable: dict | None = None) -> None:
        self._open(candles, funding, mark, start_bar, symbol, capital, slippage, leverage, api_key, api_secret,
                   tradable)

    def _open(self, candles, funding, mark, start_bar, symbol, capital, slippage, leverage, api_key, api_secret,
              tradable, passphrase: str = "sim-pass") -> None:
        """Check the symbols against :attr:`KNOWN`, build the Bitget simulator, then :meth:`_setup`."""
        for sym in (symbol, *(tradable or {})):
            if sym not in self.KNOWN:
                raise ValueError(f"symbol {sym!r}: {self.VENUE} rules known for {sorted(self.KNOWN)} only")
        BitgetSim.__init__(self, candles, funding, mark, api_key=api_key, api_secret=api_secret,
                           passphrase=passphrase, start_bar=start_bar, symbol=symbol, capital=capital,
                           slippage=slippage, market_fill="last_close", leverage=leverage, tradable=tradable)
        self._setup()

    def _setup(self) -> None:
        """The venue's own bookkeeping (called once the simulator is built); none by default."""

    # ---- the protocol (hooks a facade overrides) -----------------------------------------------------
    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._rest)  # no websocket

    def _fault_key(self, request: web.Request, path: str) -> str:
        """A fault's ``endpoint`` matches the end of ``"METHOD /path"``."""
        return f"{request.method} {path}"

    def _json(self, body, status: int = 200) -> web.Response:
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    def _ok(self, data) -> web.Response:
        """The answer to an accepted request whose handler returned ``data`` (default: ``data`` as is)."""
        return self._json(data)

    def _refuse(self, err: VenueError) -> web.Response:
        """The answer to a refused request (default: ``err.body()`` with ``err.status``)."""
        return self._json(err.body(), err.status)

    def _not_found(self, request: web.Request, path: str) -> web.Response:
        raise NotImplementedError

    def _translate(self, exc: SimError) -> VenueError:
        """The venue's error for the engine's Bitget :class:`SimError`."""
        raise NotImplementedError

    def _verify(self, request: web.Request, body: str) -> None:
        """Authenticate a signed request; raise the venue's :class:`VenueError` to refuse it."""
        raise NotImplementedError

    def _bad_json(self) -> VenueError:
        """The venue's error for a body that is not JSON."""
        raise NotImplementedError

    def _params(self, request: web.Request, body: str):
        """A request's parameters: a GET's query (a dict of strings, blanks kept), else the JSON
        body (``{}`` when empty; :meth:`_bad_json` when it is not JSON)."""
        if request.method == "GET":
            return dict(parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True))
        try:
            return json.loads(body) if body else {}
        except ValueError:
            raise self._bad_json() from None

    async def _dispatch(self, request: web.Request, path: str, body: str) -> web.Response:
        """Find the handler (:attr:`PUBLIC`, then :attr:`SIGNED`: authenticated), decode the
        parameters, run the handler under the lock and drain the engines' events (no websocket);
        a :class:`VenueError` or an engine :class:`SimError` (translated) is the refusal."""
        key = (request.method, path)
        handler, signed = self.PUBLIC.get(key), False
        if handler is None:
            handler = self.SIGNED.get(key)
            signed = handler is not None
        if handler is None:
            return self._not_found(request, path)
        try:
            if signed:
                self._verify(request, body)
            params = self._params(request, body)
            with self.lock:
                data = handler(self, params)
                self.hub.collect_account_events()  # drain the engines' event lists (no websocket here)
        except VenueError as exc:
            return self._refuse(exc)
        except SimError as exc:
            return self._refuse(self._translate(exc))
        return self._ok(data)


# ---- helpers of the endpoint modules ---------------------------------------------------------------
def route(table: dict, method: str, path: str):
    """Decorator: register the handler as ``table[(method, path)]`` (``path`` in full: "/fapi/v1/order")."""
    def deco(fn):
        table[(method, path)] = fn
        return fn
    return deco


def bitget_params(e, **kw) -> dict:
    """Parameters of an engine call (the engine speaks Bitget: symbol, productType, marginCoin)."""
    return {"symbol": e.symbol, "productType": "USDT-FUTURES", "marginCoin": "USDT", **kw}


def pick(table: Mapping[str, T], key: str, missing: Exception | None, unknown: Exception) -> T | None:
    """``table[key]`` (the engine or market of a request's symbol): ``missing`` raised when ``key``
    is empty (None: return None), ``unknown`` when it is not in ``table``."""
    if not key:
        if missing is not None:
            raise missing
        return None
    hit = table.get(key)
    if hit is None:
        raise unknown
    return hit


def coin_names(sim) -> list[str]:
    """USDT and the traded base coins, sorted (the coin lists ccxt's fetch_currencies reads)."""
    return ["USDT"] + sorted({s[:-4] for s in sim.engines})


def candle_window(m, gran: str, start: int | None, end: int | None, limit: int, kind: str) -> list:
    """The closed ``gran`` candles of the replay market ``m`` (:meth:`ReplayMarket.candles` rows,
    oldest first) as Binance and Bybit page them: with ``start`` (ms) the first ``limit`` opening at
    or after it (and at or before ``end``), else the last ``limit`` opening at or before ``end``
    (ms, inclusive; default now). ``kind``: MARKET, MARK or INDEX. ValueError from ``m.candles``
    (an unknown or too fine granularity)."""
    step = GRANULARITY_MS[gran]
    end_excl = None if end is None else end + 1
    if start is not None and step != MONTH:  # no need to format more than `limit` candles
        cap = start + limit * step
        end_excl = cap if end_excl is None else min(end_excl, cap)
    rows = m.candles(gran, start, end_excl, 10**9, 10**9, kind)
    return rows[:limit] if start is not None else rows[-limit:]


def settled_funding(m, start: int | None = None, end: int | None = None) -> list[tuple[int, float]]:
    """The funding events of the replay market ``m`` settled by now (funding time <= ``m.now_ms``)
    with ``start`` <= time <= ``end`` (ms, inclusive; None: open), oldest first, as (time ms, rate)."""
    k = int(np.searchsorted(m.fund_ms, m.now_ms, side="right"))
    return [(int(m.fund_ms[i]), float(m.fund_rate[i])) for i in range(k)
            if (start is None or m.fund_ms[i] >= start) and (end is None or m.fund_ms[i] <= end)]
