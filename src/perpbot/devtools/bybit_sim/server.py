"""BybitSim: the Bitget simulator's engine, wallet, replay market and faults behind Bybit's v5 REST
protocol (category linear, unified trading account; HTTP on 127.0.0.1 in a background thread; no websocket).

Usage::

    sim = BybitSim(candles=df5m, funding=df_funding, mark=df_mark8h, start_bar=500)
    sim.start()
    ex = ccxt.async_support.bybit({"apiKey": sim.api_key, "secret": sim.api_secret,
                                   "options": {"defaultType": "swap", "enableUnifiedAccount": True,
                                               "enableUnifiedMargin": False}})
    sim.point(ex)
    ...
    sim.advance()   # close the next candle: triggers, liquidation, funding
    sim.stop()
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pandas as pd
from aiohttp import web

from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.bitget_sim.server import BitgetSim
from perpbot.devtools.bybit_sim.auth import verify
from perpbot.devtools.bybit_sim.errors import BybitError, translate
from perpbot.devtools.bybit_sim.info import RULES, engine_spec
from perpbot.devtools.bybit_sim.orders import ORDERS
from perpbot.devtools.bybit_sim.private import PRIVATE
from perpbot.devtools.bybit_sim.public import PUBLIC

SIGNED = {**PRIVATE, **ORDERS}


class BybitSim(BitgetSim):
    """A replaying Bybit v5 USDT-perpetual exchange for tests (see the package docstring).

    Args: as :class:`~perpbot.devtools.bitget_sim.server.BitgetSim` (``candles``, ``funding``, ``mark``,
    ``start_bar``, ``symbol``, ``capital`` USDT, ``slippage`` fraction, ``leverage``, ``api_key``
    (default ``sim-key-`` + 12 random hex digits), ``api_secret``, ``tradable``), with Bybit's rules:
    symbols among :data:`~perpbot.devtools.bybit_sim.info.RULES`, market orders fill at once at the last
    close, fees taker 0.055 % / maker 0.02 %. No ``others``, no passphrase, no websocket.

    Attributes: those of BitgetSim (``engine``, ``engines``, ``wallet``, ``market``, ``faults``,
    ``requests``, ``api_key``, ``api_secret``, ``state``) and ``links`` (the engine client ids that
    came as a user's ``orderLinkId``: only those are shown). Fault ``endpoint`` strings match the end
    of ``"METHOD /path"``: ``"/v5/order/create"``, ``"POST /v5/order/create"``, ``"GET /v5/order/realtime"``...
    Raises ValueError for a symbol Bybit rules are not known for, and as BitgetSim for bad arguments.
    """

    def __init__(self, candles: pd.DataFrame, funding: pd.DataFrame | None = None, mark: pd.DataFrame | None = None,
                 start_bar: int | None = None, symbol: str = "SOLUSDT", capital: float = 1000.0,
                 slippage: float = 0.0, leverage: int = 10, api_key: str | None = None,
                 api_secret: str = "sim-secret", tradable: dict | None = None) -> None:
        for sym in (symbol, *(tradable or {})):
            if sym not in RULES:
                raise ValueError(f"symbol {sym!r}: Bybit rules known for {sorted(RULES)} only")
        super().__init__(candles, funding, mark, api_key=api_key, api_secret=api_secret, start_bar=start_bar,
                         symbol=symbol, capital=capital, slippage=slippage, market_fill="last_close",
                         leverage=leverage, tradable=tradable)
        self.links: set[str] = set()

    def contract_spec(self, symbol: str) -> dict | None:
        return engine_spec(symbol)

    def point(self, exchange) -> None:
        """Point a ccxt ``bybit`` (async or sync) at this simulator: every REST url of
        ``exchange.urls["api"]`` (spot, futures, v2, public, private) becomes this host."""
        api = exchange.urls.get("api") or {}
        exchange.urls["api"] = {k: (self.base_url if isinstance(v, str) else v) for k, v in api.items()}

    # ---- the protocol ------------------------------------------------------------------------------
    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._rest)

    def _fault_key(self, request: web.Request, path: str) -> str:
        return f"{request.method} {path}"

    def _json(self, result=None, code: int = 0, msg: str = "OK", status: int = 200) -> web.Response:
        body = {"retCode": code, "retMsg": msg, "result": {} if result is None else result, "retExtInfo": {},
                "time": self.server_clock_ms()}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    def _rate_limited(self) -> web.Response:
        return self._json(code=10006, msg="Too many visits. Exceeded the API Rate Limit.")

    async def _dispatch(self, request: web.Request, path: str, body: str) -> web.Response:
        key = (request.method, path)
        handler, signed = PUBLIC.get(key), False
        if handler is None:
            handler = SIGNED.get(key)
            signed = handler is not None
        if handler is None:
            return self._json(code=10017, msg=f"route not found: {request.method} {path}", status=404)
        raw_query = request.raw_path.partition("?")[2]
        try:
            if signed:
                verify(request.headers, raw_query if request.method == "GET" else body, self.api_key,
                       self.api_secret, self.server_clock_ms())
            if request.method == "GET":
                params = dict(parse_qsl(raw_query, keep_blank_values=True))
            else:
                try:
                    params = json.loads(body) if body else {}
                except ValueError:
                    raise BybitError(10001, "params error: the body is not JSON") from None
                if not isinstance(params, dict):
                    raise BybitError(10001, "params error: the body is not a JSON object")
            with self.lock:
                data = handler(self, params)
                self.hub.collect_account_events()  # drain the engines' event lists (no websocket here)
        except BybitError as exc:
            return self._json(exc.result, exc.code, exc.msg, exc.status)
        except SimError as exc:
            err = translate(exc)
            return self._json(err.result, err.code, err.msg, err.status)
        return self._json(data)
