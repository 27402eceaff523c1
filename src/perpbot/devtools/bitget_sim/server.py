"""BitgetSim: the local Bitget-compatible exchange (HTTP + websocket on 127.0.0.1, one thread).

Usage::

    sim = BitgetSim(candles=df5m, funding=df_funding, mark=df_mark, start_bar=500,
                    tradable={"BTCUSDT": (btc5m, btc_funding, btc_mark)})   # optional: more symbols
    base_url = sim.start()              # "http://127.0.0.1:PORT"
    ex = ccxt.bitget({"apiKey": sim.api_key, "secret": sim.api_secret, "password": sim.passphrase,
                      "options": {"defaultType": "swap", "uta": False, "fetchMarkets": {"types": ["swap"]}}})
    sim.point(ex)                        # ex.urls -> the simulator (REST and, for ccxt.pro, WS)
    ...
    sim.advance()                        # close the next candle: fills, triggers, funding, WS pushes
    sim.stop()

The server is aiohttp (a ccxt dependency) in a background thread with its own event loop;
REST handlers and :meth:`BitgetSim.advance` share one lock, so the state a test reads after
``advance()`` returns is complete and every websocket update of that candle has been sent.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time

import numpy as np
import pandas as pd
from aiohttp import web

from perpbot.devtools.bitget_sim.auth import AuthError, Credentials, verify_rest
from perpbot.devtools.bitget_sim.account import Wallet
from perpbot.devtools.bitget_sim.engine import Engine
from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.bitget_sim.faults import Faults
from perpbot.devtools.bitget_sim.market import ReplayMarket
from perpbot.devtools.bitget_sim.private import PRIVATE
from perpbot.devtools.bitget_sim.routes import PUBLIC
from perpbot.devtools.bitget_sim.ws import WsHub

REST_API_KEYS = ("spot", "mix", "user", "p2p", "broker", "margin", "common", "tax", "convert", "copy", "earn", "uta")


class BitgetSim:
    """A replaying Bitget v2 USDT-futures exchange for tests.

    Args:
        candles: base candles of ``symbol`` (``timestamp`` UTC open, OHLC USDT, volume base coin).
        funding: funding events (``timestamp``, ``funding_rate``) or None (no funding).
        mark: mark-price candles used for the funding mark price (e.g. the 8h mark file) or None.
        api_key, api_secret, passphrase: the one accepted API key (default key: ``sim-key-`` and 12
            random hex digits, so that two simulators are two accounts).
        start_bar: index of the first candle NOT yet closed (the replay clock starts at its
            open); default min(1000, len(candles) - 1). Candles before it are history.
        symbol: Bitget symbol id replayed and traded ("SOLUSDT").
        capital: starting USDT balance of the futures account.
        slippage: fraction applied against the taker on market fills (as the backtester's
            ``slippage``); 0 by default.
        market_fill: "next_open" (default: a market order fills at the open of the next candle
            advance() closes, like the backtester) or "last_close" (immediately at the last close).
        leverage: default leverage of every traded symbol before any set-leverage.
        tradable: more TRADED symbols on the same account and replay clock: ``{"BTCUSDT":
            candles}``, ``{"BTCUSDT": (candles, funding)}`` or ``{"BTCUSDT": (candles, funding,
            mark)}`` (keys of :data:`~perpbot.devtools.bitget_sim.market.CONTRACTS`, other than
            ``symbol``); their candles must have exactly the timestamps of ``candles`` (same
            timeframe, same rows). Each gets its own :class:`Engine` (position, orders, plans,
            leverage, margin mode, fills, funding bills) on the one shared :class:`Wallet`;
            ``advance()`` closes the next candle of every traded symbol; REST, websocket and
            funding serve all of them.
        others: public market data of more symbols (``{"BTCUSDT": candles}`` or ``{"BTCUSDT":
            (candles, funding)}``, keys of :data:`~perpbot.devtools.bitget_sim.market.CONTRACTS`):
            served by the public REST endpoints (candles, ticker(s), funding, open interest, book)
            on the same replay clock (a candle of theirs is served once it closed by ``symbol``'s
            clock); not tradable, no websocket.

    Attributes: ``market`` (:class:`ReplayMarket`) and ``engine`` (:class:`Engine`) of
    ``symbol``; ``engines`` (symbol -> :class:`Engine`, ``symbol`` first, then ``tradable``);
    ``wallet`` (:class:`Wallet`: the shared USDT balance); ``faults`` (:class:`Faults`);
    ``requests`` (list of dicts: time, method, path, query, body, status, demo); ``state`` (a
    snapshot dict of ``symbol``, see :meth:`Engine.snapshot`; :meth:`state_of` for any symbol).
    Raises ValueError for bad arguments (see ReplayMarket / Engine; misaligned ``tradable``
    candles; a ``tradable`` symbol equal to ``symbol`` or also in ``others``).
    """

    def __init__(self, candles: pd.DataFrame, funding: pd.DataFrame | None = None, mark: pd.DataFrame | None = None,
                 api_key: str | None = None, api_secret: str = "sim-secret", passphrase: str = "sim-pass",
                 start_bar: int | None = None, symbol: str = "SOLUSDT", capital: float = 1000.0,
                 slippage: float = 0.0, market_fill: str = "next_open", leverage: int = 10,
                 others: dict | None = None, tradable: dict | None = None) -> None:
        if start_bar is None:
            start_bar = min(1000, len(candles) - 1)
        if not 1 <= start_bar < len(candles):
            raise ValueError(f"start_bar must be in [1, {len(candles) - 1}], got {start_bar}")
        # a fresh key per simulator: two simulators are two accounts (node locks, run ownership)
        self.creds = Credentials(api_key or f"sim-key-{secrets.token_hex(6)}", api_secret, passphrase)
        self.market = ReplayMarket(candles, symbol, funding, mark, closed=start_bar, spec=self.contract_spec(symbol))
        self.others: dict[str, ReplayMarket] = {}
        for sym, data in (others or {}).items():
            c, f = data if isinstance(data, tuple) else (data, None)
            self.others[sym] = ReplayMarket(c, sym, f, None, closed=1)
        self._sync_others()
        self.wallet = Wallet(capital)
        self.engine = Engine(self.market, slippage=slippage, market_fill=market_fill, leverage=leverage,
                             wallet=self.wallet)
        self.engines: dict[str, Engine] = {symbol: self.engine}
        for sym, data in (tradable or {}).items():
            if sym == symbol or sym in self.others:
                raise ValueError(f"tradable {sym!r}: already the traded symbol or in others")
            c, f, mk = (tuple(data) + (None, None))[:3] if isinstance(data, tuple) else (data, None, None)
            m = ReplayMarket(c, sym, f, mk, closed=start_bar, spec=self.contract_spec(sym))
            if not np.array_equal(m.ts, self.market.ts):
                raise ValueError(f"tradable {sym!r}: its candle timestamps must equal those of {symbol}'s candles")
            self.engines[sym] = Engine(m, slippage=slippage, market_fill=market_fill, leverage=leverage,
                                       wallet=self.wallet)
        self.faults = Faults()
        for e in self.engines.values():
            e.faults = self.faults
        self.requests: list[dict] = []
        self.lock = threading.RLock()
        self.hub = WsHub(self)
        self.faults._drop_ws = self._drop_ws
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sleepers: set[asyncio.Task] = set()
        self.port: int | None = None

    def contract_spec(self, symbol: str) -> dict | None:
        """A traded symbol's contract rules (None: Bitget's ``CONTRACTS``; a facade's venue rules)."""
        return None

    # ---- credentials and urls ---------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return self.creds.api_key

    @property
    def api_secret(self) -> str:
        return self.creds.api_secret

    @property
    def passphrase(self) -> str:
        return self.creds.passphrase

    @property
    def base_url(self) -> str:
        self._need_running()
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url_public(self) -> str:
        self._need_running()
        return f"ws://127.0.0.1:{self.port}/v2/ws/public"

    @property
    def ws_url_private(self) -> str:
        self._need_running()
        return f"ws://127.0.0.1:{self.port}/v2/ws/private"

    def point(self, exchange) -> None:
        """Point a ccxt / ccxt.pro bitget instance at this simulator by setting its ``urls``
        (REST for every API group; for ccxt.pro also the live and demo websocket urls)."""
        api = {k: self.base_url for k in REST_API_KEYS}
        ws_urls = {"public": self.ws_url_public, "private": self.ws_url_private,
                   "utaPublic": self.ws_url_public, "utaPrivate": self.ws_url_private}
        old = exchange.urls.get("api", {})
        if isinstance(old, dict) and "ws" in old:
            api["ws"] = dict(ws_urls)
            api["demo"] = dict(ws_urls)
        exchange.urls["api"] = api

    @property
    def markets(self) -> dict[str, ReplayMarket]:
        """Every served symbol's market data: the traded ones first (``symbol``, then ``tradable``),
        then ``others``."""
        return {**{s: e.market for s, e in self.engines.items()}, **self.others}

    def engine_for(self, params: dict) -> Engine:
        """The engine of ``params["symbol"]`` (a request's symbol, any case); SimError 40019 when
        it is empty, 40034 when this account does not trade it, 40099 for another productType."""
        sym = (params.get("symbol") or "").upper()
        if not sym:
            raise SimError("40019", "Parameter symbol cannot be empty")
        engine = self.engines.get(sym)
        if engine is None:
            raise SimError("40034", f"Parameter {sym} does not exist (the simulator trades {', '.join(self.engines)})")
        engine.check_symbol(params)
        return engine

    def _sync_others(self) -> None:
        now = self.market.now_ms
        for m in self.others.values():
            m.set_closed(max(1, min(m.n, int(np.searchsorted(m.ts + m.base_ms, now, side="right")))))

    @property
    def state(self) -> dict:
        """Snapshot of ``symbol``: account-wide balance / equity / available, its position, orders,
        plan orders, fills, bills (see :meth:`Engine.snapshot`)."""
        with self.lock:
            return self.engine.snapshot()

    def state_of(self, symbol: str) -> dict:
        """Snapshot of one traded symbol (as :attr:`state`); KeyError when it is not traded."""
        with self.lock:
            return self.engines[symbol].snapshot()

    # ---- replay clock -------------------------------------------------------------------------------
    def advance(self, n: int = 1) -> list[dict]:
        """Close the next ``n`` candles of every traded symbol; for each: funding, fills,
        TP/SL/liquidation (symbol by symbol, ``symbol`` first), then the WS pushes.

        Returns ``symbol``'s closed candles as dicts (timestamp ms, open, high, low, close, volume).
        Raises ValueError when n < 1; IndexError when the data has fewer than n candles left.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        out = []
        for _ in range(n):
            with self.lock:
                if self.market.closed >= self.market.n:
                    raise IndexError(f"advance: no candle left to close (all {self.market.n} replayed)")
                out.append(self.engine.close_next_candle())
                for e in self.engines.values():
                    if e is not self.engine:
                        e.close_next_candle()
                self._sync_others()
                events = self.hub.collect_candle_events()
            self._flush_ws(events)
        return out

    # ---- server lifecycle ------------------------------------------------------------------------------
    def start(self) -> str:
        """Start HTTP + websocket on 127.0.0.1 (free port) in a background thread; return the base url."""
        if self._thread is not None:
            raise RuntimeError("BitgetSim already started")
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # surfaced to start()
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="bitget-sim", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            self._thread = None
            raise RuntimeError(f"BitgetSim failed to start: {errors[0]}")
        return self.base_url

    def stop(self) -> None:
        """Stop the server and its thread (idempotent). Open websockets are closed."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._thread = None
        self._loop = None

    def __enter__(self) -> "BitgetSim":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _need_running(self) -> None:
        if self.port is None or self._thread is None:
            raise RuntimeError("BitgetSim is not running: call start() first")

    async def _serve(self) -> None:
        app = web.Application(client_max_size=1 << 20)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def _add_routes(self, app: web.Application) -> None:
        """Bitget: the two websocket paths, then every other path to :meth:`_rest`."""
        async def ws_public(request: web.Request) -> web.WebSocketResponse:
            return await self.hub.handle(request, private=False)

        async def ws_private(request: web.Request) -> web.WebSocketResponse:
            return await self.hub.handle(request, private=True)

        app.router.add_get("/v2/ws/public", ws_public)
        app.router.add_get("/v2/ws/private", ws_private)
        app.router.add_route("*", "/{tail:.*}", self._rest)

    async def _shutdown(self) -> None:
        for task in list(self._sleepers):
            task.cancel()
        await self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
        self.port = None

    def _flush_ws(self, events: list) -> None:
        if events and self._loop is not None and self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self.hub.send_events(events), self._loop)
            fut.result(10)

    def _drop_ws(self, which: str) -> None:
        if self._loop is None:
            raise RuntimeError("drop_websocket: the simulator is not running")
        asyncio.run_coroutine_threadsafe(self.hub.drop(which), self._loop).result(10)

    # ---- REST ------------------------------------------------------------------------------------------
    def server_clock_ms(self) -> int:
        """The venue's wall clock (ms UTC): the local clock plus the injected skew
        (``faults.clock_skew``). It checks request timestamps and stamps ``requestTime``; the
        replay clock (``market.now_ms``, the served ``serverTime``) is market time."""
        return int(time.time() * 1000) + self.faults.skew_ms

    def _answer(self, data=None, code: str = "00000", msg: str = "success", status: int = 200) -> web.Response:
        body = {"code": code, "msg": msg, "requestTime": self.server_clock_ms(), "data": data}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    async def _rest(self, request: web.Request) -> web.Response:
        path, body = request.path, await request.text()
        entry = {"time": time.time(), "method": request.method, "path": path, "query": request.query_string,
                 "body": body, "demo": self._is_demo(request), "status": None}
        self.requests.append(entry)
        resp = await self._rest_inner(request, path, body)
        entry["status"] = resp.status
        return resp

    def _is_demo(self, request: web.Request) -> bool:  # the demo-trading header (Bitget: ``paptrading: 1``)
        return request.headers.get("paptrading") == "1"

    def _fault_key(self, request: web.Request, path: str) -> str:
        """What a fault's ``endpoint`` is matched against (its end): the request path."""
        return path

    def _rate_limited(self) -> web.Response:
        return self._answer(code="429", msg="Too Many Requests", status=429)

    async def _rest_inner(self, request: web.Request, path: str, body: str) -> web.Response:
        """Faults (slow, 429, 5xx before; timeout after an accepted request) around :meth:`_dispatch`."""
        where = self._fault_key(request, path)
        status = await self.faults.before_request(where)
        if status == 429:
            return self._rate_limited()
        if status is not None:
            return web.Response(status=status, text=f"<html><body><h1>{status} Service Unavailable</h1></body></html>",
                                content_type="text/html")
        resp = await self._dispatch(request, path, body)
        if resp.status == 200:
            await self.faults.after_accept(where, self._sleepers)
        return resp

    async def _dispatch(self, request: web.Request, path: str, body: str) -> web.Response:
        """Bitget: authenticate a private request, run its handler under the lock, push WS events."""
        key = (request.method, path)
        handler = PUBLIC.get(key)
        private = False
        if handler is None:
            handler = PRIVATE.get(key)
            private = handler is not None
        if handler is None:
            return self._answer(code="40404", msg="Request URL NOT FOUND", status=404)
        if private:
            try:
                verify_rest(request.headers, request.method, path, request.query_string, body, self.creds,
                            now_ms=self.server_clock_ms())
            except AuthError as exc:
                return self._answer(code=exc.code, msg=exc.msg, status=400)
        if request.method == "GET":
            params = dict(request.query)
        else:
            try:
                params = json.loads(body) if body else {}
            except ValueError:
                return self._answer(code="40017", msg="Parameter verification failed: body is not JSON", status=400)
            if not isinstance(params, dict):
                return self._answer(code="40017", msg="Parameter verification failed: body is not an object",
                                    status=400)
        try:
            with self.lock:
                data = handler(self, params)
                events = self.hub.collect_account_events()
        except SimError as exc:
            return self._answer(code=exc.code, msg=exc.msg, status=exc.status)
        if events:
            await self.hub.send_events(events)
        return self._answer(data)
