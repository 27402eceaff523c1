"""BinanceSim: the Bitget simulator's engine, wallet, replay market and faults behind Binance's
USDⓈ-M ``/fapi`` REST protocol (HTTP on 127.0.0.1 in a background thread; no websocket).

Usage::

    sim = BinanceSim(candles=df5m, funding=df_funding, mark=df_mark8h, start_bar=500)
    sim.start()
    ex = ccxt.async_support.binanceusdm({"apiKey": sim.api_key, "secret": sim.api_secret,
                                         "options": {"defaultType": "swap"}})
    sim.point(ex)
    ...
    sim.advance()   # close the next candle: triggers, liquidation, funding
    sim.stop()
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
from aiohttp import web

from perpbot.devtools.binance_sim.auth import verify
from perpbot.devtools.binance_sim.errors import BinanceError, translate
from perpbot.devtools.binance_sim.info import RULES, engine_spec
from perpbot.devtools.binance_sim.orders import ORDERS
from perpbot.devtools.binance_sim.private import PRIVATE
from perpbot.devtools.binance_sim.public import PUBLIC
from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.bitget_sim.server import BitgetSim

SIGNED = {**PRIVATE, **ORDERS}


class BinanceSim(BitgetSim):
    """A replaying Binance USDⓈ-M futures exchange for tests (see the package docstring).

    Args: as :class:`~perpbot.devtools.bitget_sim.server.BitgetSim` (``candles``, ``funding``,
    ``mark``, ``start_bar``, ``symbol``, ``capital`` USDT, ``slippage`` fraction, ``leverage``,
    ``api_key`` (default ``sim-key-`` + 12 random hex digits), ``api_secret``, ``tradable``),
    with Binance's rules: symbols among :data:`~perpbot.devtools.binance_sim.info.RULES`
    (SOLUSDT, BTCUSDT, ETHUSDT), market orders fill at once at the last close, fees taker 0.05 %
    / maker 0.02 %. No ``others``, no passphrase, no websocket.

    Attributes: those of BitgetSim (``engine``, ``engines``, ``wallet``, ``market``, ``faults``,
    ``requests``, ``api_key``, ``api_secret``, ``state``) and ``user_cancelled`` (ids of orders
    and algo orders the user cancelled: CANCELED; the others the venue cancelled: EXPIRED).
    Fault ``endpoint`` strings match the end of ``"METHOD /path"``: ``"/fapi/v1/order"`` any
    method, ``"POST /fapi/v1/order"`` only order placement (``faults.timeout_after_accept(
    endpoint="POST /fapi/v1/algoOrder")``...). Raises ValueError for a symbol Binance rules are
    not known for, and as BitgetSim for bad arguments.
    """

    def __init__(self, candles: pd.DataFrame, funding: pd.DataFrame | None = None, mark: pd.DataFrame | None = None,
                 start_bar: int | None = None, symbol: str = "SOLUSDT", capital: float = 1000.0,
                 slippage: float = 0.0, leverage: int = 10, api_key: str | None = None,
                 api_secret: str = "sim-secret", tradable: dict | None = None) -> None:
        for sym in (symbol, *(tradable or {})):
            if sym not in RULES:
                raise ValueError(f"symbol {sym!r}: Binance rules known for {sorted(RULES)} only")
        super().__init__(candles, funding, mark, api_key=api_key, api_secret=api_secret, start_bar=start_bar,
                         symbol=symbol, capital=capital, slippage=slippage, market_fill="last_close",
                         leverage=leverage, tradable=tradable)
        self.user_cancelled: set[str] = set()

    def contract_spec(self, symbol: str) -> dict | None:
        return engine_spec(symbol)

    def point(self, exchange, linear_errors: bool = True) -> None:
        """Point a ccxt ``binanceusdm`` (async or sync) at this simulator: every REST url of
        ``exchange.urls["api"]`` (fapi*, public, private, sapi...) keeps its path on this host.

        ``linear_errors``: ccxt picks its USDⓈ-M error table (``exceptions["linear"]``: -2019
        InsufficientFunds, -2021, -2022, -4116, -4164...) by the url's host
        (``https://fapi.binance.com/``), which a local url never has; so the instance's
        ``exceptions["exact"]`` / ``["broad"]`` are given that table on top, as ccxt applies it
        live (instance settings like ``urls``; no ccxt code changes). False leaves them alone.
        """
        base = self.base_url
        api = exchange.urls.get("api") or {}
        exchange.urls["api"] = {k: (base + urlsplit(v).path if isinstance(v, str) else v) for k, v in api.items()}
        if linear_errors:
            exc = exchange.exceptions
            linear = exc.get("linear", {})
            exchange.exceptions = {**exc, "exact": {**exc.get("exact", {}), **linear.get("exact", {})},
                                   "broad": {**exc.get("broad", {}), **linear.get("broad", {})}}

    # ---- the protocol ------------------------------------------------------------------------------
    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._rest)

    def _fault_key(self, request: web.Request, path: str) -> str:
        return f"{request.method} {path}"

    def _json(self, body, status: int = 200) -> web.Response:
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    def _rate_limited(self) -> web.Response:
        return self._json({"code": -1003, "msg": "Too many requests; current limit of IP(127.0.0.1) is 2400 "
                                                 "requests per minute."}, 429)

    async def _dispatch(self, request: web.Request, path: str, body: str) -> web.Response:
        key = (request.method, path)
        handler, signed = PUBLIC.get(key), False
        if handler is None:
            handler = SIGNED.get(key)
            signed = handler is not None
        if handler is None:
            return self._json({"code": -5000, "msg": f"Path {path}, Method {request.method} is invalid"}, 404)
        raw_query = request.raw_path.partition("?")[2]
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        if body and request.method in ("POST", "PUT", "DELETE"):
            params.update(parse_qsl(body, keep_blank_values=True))
        try:
            if signed:
                verify(request.headers, raw_query, body, params, self.api_key, self.api_secret, self.server_clock_ms())
            with self.lock:
                data = handler(self, params)
                self.hub.collect_account_events()  # drain the engines' event lists (no websocket here)
        except BinanceError as exc:
            return self._json(exc.body(), exc.status)
        except SimError as exc:
            err = translate(exc)
            return self._json(err.body(), err.status)
        return self._json(data)
