"""OkxSim: the Bitget simulator's engine, wallet, replay market and faults behind OKX's API v5 REST
protocol (HTTP on 127.0.0.1 in a background thread; no websocket).

Usage::

    sim = OkxSim(candles=df5m, funding=df_funding, mark=df_mark8h, start_bar=500)
    sim.start()
    ex = ccxt.async_support.okx({"apiKey": sim.api_key, "secret": sim.api_secret,
                                 "password": sim.passphrase, "options": {"defaultType": "swap"}})
    ex.set_sandbox_mode(True)   # OKX demo trading: the x-simulated-trading header (optional here)
    sim.point(ex)
    ...
    sim.advance()   # close the next candle: triggers, liquidation, funding
    sim.stop()
"""

from __future__ import annotations

import pandas as pd
from aiohttp import web

from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.facade import ProtocolFacade, VenueError
from perpbot.devtools.okx_sim.auth import verify
from perpbot.devtools.okx_sim.errors import OkxError, translate
from perpbot.devtools.okx_sim.info import INST_IDS, engine_spec
from perpbot.devtools.okx_sim.orders import ORDERS
from perpbot.devtools.okx_sim.private import PRIVATE
from perpbot.devtools.okx_sim.public import PUBLIC


class OkxSim(ProtocolFacade):
    """A replaying OKX USDT-perpetual (SWAP) exchange for tests (see the package docstring).

    Args: as :class:`~perpbot.devtools.bitget_sim.server.BitgetSim` (``candles``, ``funding``,
    ``mark``, ``start_bar``, ``symbol``, ``capital`` USDT, ``slippage`` fraction, ``leverage``,
    ``api_key`` (default ``sim-key-`` + 12 random hex digits), ``api_secret``, ``passphrase``),
    with OKX's rules: the symbol SOLUSDT (instrument SOL-USDT-SWAP, :mod:`.info`), market orders
    fill at once at the last close, fees taker 0.05 % / maker 0.02 %. No ``others``, no
    ``tradable``, no websocket.

    Attributes: those of BitgetSim (``engine``, ``wallet``, ``market``, ``faults``, ``requests``
    (``demo``: the request carried ``x-simulated-trading: 1``), ``api_key``, ``api_secret``,
    ``passphrase``, ``state``), ``algo_meta`` (plan id -> clOrdId / algoClOrdId / trigger price
    types of an algo order placed through ``order-algo``) and ``attach_types`` (entry order id ->
    trigger price types of its attached TP/SL). Fault ``endpoint`` strings match the end of
    ``"METHOD /path"``: ``"/api/v5/trade/order"`` any method, ``"POST /api/v5/trade/batch-orders"``
    (ccxt's order placement), ``"POST /api/v5/trade/order-algo"``... Raises ValueError for a symbol
    OKX rules are not known for, and as BitgetSim for bad arguments.
    """

    VENUE = "OKX"
    KNOWN = INST_IDS
    PUBLIC = PUBLIC
    SIGNED = {**PRIVATE, **ORDERS}

    def __init__(self, candles: pd.DataFrame, funding: pd.DataFrame | None = None, mark: pd.DataFrame | None = None,
                 start_bar: int | None = None, symbol: str = "SOLUSDT", capital: float = 1000.0,
                 slippage: float = 0.0, leverage: int = 10, api_key: str | None = None,
                 api_secret: str = "sim-secret", passphrase: str = "sim-pass") -> None:
        self._open(candles, funding, mark, start_bar, symbol, capital, slippage, leverage, api_key, api_secret,
                   None, passphrase)

    def _setup(self) -> None:
        self.algo_meta: dict[str, dict] = {}
        self.attach_types: dict[str, dict] = {}

    def contract_spec(self, symbol: str) -> dict | None:
        return engine_spec(symbol)

    def point(self, exchange) -> None:
        """Point a ccxt ``okx`` (async or sync, live or sandbox mode) at this simulator: its REST url
        (``urls["api"]["rest"]``, and the sandbox one) becomes this host; websocket urls are left alone."""
        for key in ("api", "test"):
            urls = exchange.urls.get(key)
            if isinstance(urls, dict):
                exchange.urls[key] = {**urls, "rest": self.base_url}

    # ---- the protocol (the hooks of ProtocolFacade) ---------------------------------------------------
    def _is_demo(self, request: web.Request) -> bool:
        return request.headers.get("x-simulated-trading") == "1"

    def _ok(self, data) -> web.Response:
        return self._json({"code": "0", "msg": "", "data": data})

    def _rate_limited(self) -> web.Response:
        return self._json({"msg": "Too Many Requests", "code": "50011"}, 429)

    def _not_found(self, request: web.Request, path: str) -> web.Response:
        return self._json({"code": "50000", "msg": f"Path {path} ({request.method}) is not served", "data": []},
                          404)

    def _translate(self, exc: SimError) -> VenueError:
        return translate(exc)

    def _verify(self, request: web.Request, body: str) -> None:
        verify(request.headers, request.method, request.raw_path, body, self.creds, self.server_clock_ms())

    def _bad_json(self) -> VenueError:
        return OkxError("50002", "Invalid JSON", 400)
