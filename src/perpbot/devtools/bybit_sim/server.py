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

from aiohttp import web

from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.bybit_sim.auth import verify
from perpbot.devtools.bybit_sim.errors import BybitError, translate
from perpbot.devtools.bybit_sim.info import RULES, engine_spec
from perpbot.devtools.bybit_sim.orders import ORDERS
from perpbot.devtools.bybit_sim.private import PRIVATE
from perpbot.devtools.bybit_sim.public import PUBLIC
from perpbot.devtools.facade import ProtocolFacade, VenueError


class BybitSim(ProtocolFacade):
    """A replaying Bybit v5 USDT-perpetual exchange for tests (see the package docstring).

    Args: as :class:`~perpbot.devtools.facade.ProtocolFacade` (those of
    :class:`~perpbot.devtools.bitget_sim.server.BitgetSim`: ``candles``, ``funding``, ``mark``,
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

    VENUE = "Bybit"
    KNOWN = RULES
    PUBLIC = PUBLIC
    SIGNED = {**PRIVATE, **ORDERS}

    def _setup(self) -> None:
        self.links: set[str] = set()
        self.tpsl_by: dict[str, dict] = {}  # order id -> {"tpTriggerBy", "slTriggerBy"} its entry asked for

    def contract_spec(self, symbol: str) -> dict | None:
        return engine_spec(symbol)

    def point(self, exchange) -> None:
        """Point a ccxt ``bybit`` (async or sync) at this simulator: every REST url of
        ``exchange.urls["api"]`` (spot, futures, v2, public, private) becomes this host."""
        api = exchange.urls.get("api") or {}
        exchange.urls["api"] = {k: (self.base_url if isinstance(v, str) else v) for k, v in api.items()}

    # ---- the protocol (the hooks of ProtocolFacade) ---------------------------------------------------
    def _envelope(self, result=None, code: int = 0, msg: str = "OK", status: int = 200) -> web.Response:
        """Bybit's answer: ``{"retCode", "retMsg", "result", "retExtInfo", "time"}`` (``time``: the
        venue clock, ms)."""
        return self._json({"retCode": code, "retMsg": msg, "result": {} if result is None else result,
                           "retExtInfo": {}, "time": self.server_clock_ms()}, status)

    def _ok(self, data) -> web.Response:
        return self._envelope(data)

    def _refuse(self, err: VenueError) -> web.Response:
        return self._envelope(err.result if isinstance(err, BybitError) else None, err.code, err.msg, err.status)

    def _rate_limited(self) -> web.Response:
        return self._envelope(code=10006, msg="Too many visits. Exceeded the API Rate Limit.")

    def _not_found(self, request: web.Request, path: str) -> web.Response:
        return self._envelope(code=10017, msg=f"route not found: {request.method} {path}", status=404)

    def _translate(self, exc: SimError) -> VenueError:
        return translate(exc)

    def _verify(self, request: web.Request, body: str) -> None:
        raw_query = request.raw_path.partition("?")[2]
        verify(request.headers, raw_query if request.method == "GET" else body, self.api_key, self.api_secret,
               self.server_clock_ms())

    def _bad_json(self) -> VenueError:
        return BybitError(10001, "params error: the body is not JSON")

    def _params(self, request: web.Request, body: str) -> dict:
        """The query of a GET, else the JSON body, which must be an object (10001)."""
        params = super()._params(request, body)
        if not isinstance(params, dict):
            raise BybitError(10001, "params error: the body is not a JSON object")
        return params
