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

from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from perpbot.devtools.binance_sim.auth import verify
from perpbot.devtools.binance_sim.errors import translate
from perpbot.devtools.binance_sim.info import RULES, engine_spec
from perpbot.devtools.binance_sim.orders import ORDERS
from perpbot.devtools.binance_sim.private import PRIVATE
from perpbot.devtools.binance_sim.public import PUBLIC
from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.facade import ProtocolFacade, VenueError


class BinanceSim(ProtocolFacade):
    """A replaying Binance USDⓈ-M futures exchange for tests (see the package docstring).

    Args: as :class:`~perpbot.devtools.facade.ProtocolFacade` (those of
    :class:`~perpbot.devtools.bitget_sim.server.BitgetSim`: ``candles``, ``funding``, ``mark``,
    ``start_bar``, ``symbol``, ``capital`` USDT, ``slippage`` fraction, ``leverage``, ``api_key``
    (default ``sim-key-`` + 12 random hex digits), ``api_secret``, ``tradable``), with Binance's
    rules: symbols among :data:`~perpbot.devtools.binance_sim.info.RULES` (SOLUSDT, BTCUSDT,
    ETHUSDT), market orders fill at once at the last close, fees taker 0.05 % / maker 0.02 %. No
    ``others``, no passphrase, no websocket.

    Attributes: those of BitgetSim (``engine``, ``engines``, ``wallet``, ``market``, ``faults``,
    ``requests``, ``api_key``, ``api_secret``, ``state``) and ``user_cancelled`` (ids of orders
    and algo orders the user cancelled: CANCELED; the others the venue cancelled: EXPIRED).
    Fault ``endpoint`` strings match the end of ``"METHOD /path"``: ``"/fapi/v1/order"`` any
    method, ``"POST /fapi/v1/order"`` only order placement (``faults.timeout_after_accept(
    endpoint="POST /fapi/v1/algoOrder")``...). Raises ValueError for a symbol Binance rules are
    not known for, and as BitgetSim for bad arguments.
    """

    VENUE = "Binance"
    KNOWN = RULES
    PUBLIC = PUBLIC
    SIGNED = {**PRIVATE, **ORDERS}

    def _setup(self) -> None:
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

    # ---- the protocol (the hooks of ProtocolFacade) ---------------------------------------------------
    def _rate_limited(self) -> web.Response:
        return self._json({"code": -1003, "msg": "Too many requests; current limit of IP(127.0.0.1) is 2400 "
                                                 "requests per minute."}, 429)

    def _not_found(self, request: web.Request, path: str) -> web.Response:
        return self._json({"code": -5000, "msg": f"Path {path}, Method {request.method} is invalid"}, 404)

    def _translate(self, exc: SimError) -> VenueError:
        return translate(exc)

    def _params(self, request: web.Request, body: str) -> dict:
        """The query's parameters, and a POST / PUT / DELETE form body's on top (strings, blanks kept)."""
        params = dict(parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True))
        if body and request.method in ("POST", "PUT", "DELETE"):
            params.update(parse_qsl(body, keep_blank_values=True))
        return params

    def _verify(self, request: web.Request, body: str) -> None:
        verify(request.headers, request.raw_path.partition("?")[2], body, self._params(request, body), self.api_key,
               self.api_secret, self.server_clock_ms())
