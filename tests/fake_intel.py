"""Fake market-intelligence servers on 127.0.0.1 for tests (the real httpx clients talk to them).

Each answers with the response shapes of the sources' documentation:

- :class:`FakeCoinGlass` — CoinGlass API v4 (https://docs.coinglass.com/reference): the
  ``{"code", "msg", "data"}`` envelope, the ``CG-API-KEY`` header (HTTP 401 with code "401"
  when missing or wrong), ``/api/futures/funding-rate/exchange-list`` (every coin),
  ``/api/futures/open-interest/exchange-list``, ``/api/futures/taker-buy-sell-volume/exchange-list``
  (per ``range``), ``/api/futures/liquidation/aggregated-history`` and
  ``/api/futures/open-interest/aggregated-history`` (interval minimum of the plan: code "400"
  below it).
- :class:`FakeFearGreed` — alternative.me ``/fng/?limit=N&format=json``.
- :class:`FakeFeeds` — RSS 2.0 and Atom feeds at ``/rss/<name>`` / ``/atom/<name>`` and Reddit
  listings at ``/r/<sub>/new.json``.

Every request is recorded (path, query, headers); tests can delay a path (the handler thread
sleeps, released when the server stops) or make it fail with an HTTP status.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

API_KEY = "test-cg-key-123"


@dataclass
class Req:
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    time: float = field(default_factory=time.monotonic)


Handler = Callable[[dict[str, str], dict[str, str], str], tuple[int, bytes, str]]


class FakeServer:
    """A threaded HTTP server routing GET paths to handlers ``(params, headers, path) -> (status, body, type)``."""

    def __init__(self) -> None:
        self.requests: list[Req] = []
        self.routes: dict[str, Handler] = {}
        self.prefix_routes: list[tuple[str, Handler]] = []
        self.delays: dict[str, float] = {}
        self.failures: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def calls(self, path: str) -> list[Req]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def delay(self, path: str, seconds: float) -> None:
        self.delays[path] = seconds

    def fail(self, path: str, *statuses: int) -> None:
        self.failures.setdefault(path, []).extend(statuses)

    def _handle(self, path: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes, str]:
        with self._lock:
            self.requests.append(Req(path, params, headers))
            failures = self.failures.get(path)
            status = failures.pop(0) if failures else None
        wait = self.delays.get(path, 0.0)
        if wait:
            self._closing.wait(wait)
        if status is not None:
            return status, json.dumps({"error": "injected"}).encode(), "application/json"
        handler = self.routes.get(path) or next((h for p, h in self.prefix_routes if path.startswith(p)), None)
        if handler is None:
            return 404, b'{"code": "404", "msg": "not found"}', "application/json"
        return handler(params, headers, path)

    def _handler_class(self):
        server = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body, ctype = server._handle(url.path, params, headers)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return H


def _json(status: int, payload: Any) -> tuple[int, bytes, str]:
    return status, json.dumps(payload).encode(), "application/json"


# ------------------------------------------------------------------------------- CoinGlass --
FUNDING_LIST = [
    {"symbol": "BTC",
     "stablecoin_margin_list": [
         {"exchange": "Binance", "funding_rate_interval": 8, "funding_rate": 0.007343,
          "next_funding_time": 1745222400000},
         {"exchange": "OKX", "funding_rate_interval": 8, "funding_rate": 0.00736901950628,
          "next_funding_time": 1745222400000}],
     "token_margin_list": [
         {"exchange": "Binance", "funding_rate_interval": 8, "funding_rate": -0.001829,
          "next_funding_time": 1745222400000}]},
    {"symbol": "SOL",
     "stablecoin_margin_list": [
         {"exchange": "Binance", "funding_rate_interval": 8, "funding_rate": 0.01, "next_funding_time": 1745222400000},
         {"exchange": "Bybit", "funding_rate_interval": 8, "funding_rate": -0.004, "next_funding_time": 1745222400000},
         {"exchange": "Hyperliquid", "funding_rate_interval": 1, "funding_rate": 0.0013,
          "next_funding_time": 1745193600000}],
     "token_margin_list": []},
]


def oi_rows(coin: str) -> list[dict]:
    return [
        {"exchange": "All", "symbol": coin, "open_interest_usd": 4_500_000_000.5,
         "open_interest_quantity": 30_000_000.25,
         "open_interest_by_stable_coin_margin": 4_200_000_000.0, "open_interest_quantity_by_coin_margin": 2_000_000.0,
         "open_interest_quantity_by_stable_coin_margin": 28_000_000.25, "open_interest_change_percent_5m": 0.34,
         "open_interest_change_percent_15m": 0.59, "open_interest_change_percent_30m": 1.42,
         "open_interest_change_percent_1h": 2.27, "open_interest_change_percent_4h": 2.95,
         "open_interest_change_percent_24h": -3.5},
        {"exchange": "Binance", "symbol": coin, "open_interest_usd": 1_500_000_000.0,
         "open_interest_quantity": 10_000_000.0, "open_interest_change_percent_24h": -1.25},
    ]


class FakeCoinGlass(FakeServer):
    """CoinGlass v4 (module docstring). ``taker[coin][range]`` is the ``data`` of the taker ratio
    endpoint (``{}`` = no data for that range); ``plan_min`` the finest interval accepted."""

    PLAN_SECONDS = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400,
                    "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400, "1w": 604800}

    def __init__(self, api_key: str = API_KEY, plan_min: str = "4h") -> None:
        super().__init__()
        self.api_key = api_key
        self.plan_min = plan_min
        self.taker: dict[str, dict[str, dict]] = {"SOL": {}}
        self.error_code: dict[str, str] = {}   # path -> envelope code to answer with (HTTP 200)
        for path, fn in {
            "/api/futures/funding-rate/exchange-list": self._funding,
            "/api/futures/open-interest/exchange-list": self._oi,
            "/api/futures/taker-buy-sell-volume/exchange-list": self._taker,
            "/api/futures/liquidation/aggregated-history": self._liq,
            "/api/futures/open-interest/aggregated-history": self._oi_hist,
        }.items():
            self.routes[path] = self._guard(path, fn)

    def _guard(self, path: str, fn):
        def handler(params, headers, _path):
            if headers.get("cg-api-key") != self.api_key:
                return _json(401, {"code": "401", "msg": "API key missing or invalid"})
            if path in self.error_code:
                code = self.error_code[path]
                return _json(200, {"code": code, "msg": f"error {code}"})
            return fn(params)
        return handler

    @staticmethod
    def ok(data: Any) -> tuple[int, bytes, str]:
        return _json(200, {"code": "0", "msg": "success", "data": data})

    def _interval_ok(self, params) -> bool:
        iv = params.get("interval", "")
        return iv in self.PLAN_SECONDS and self.PLAN_SECONDS[iv] >= self.PLAN_SECONDS[self.plan_min]

    def _funding(self, params):
        return self.ok(FUNDING_LIST)

    def _oi(self, params):
        return self.ok(oi_rows(params["symbol"]))

    def _taker(self, params):
        data = self.taker.get(params.get("symbol", ""), {}).get(params.get("range", ""), {})
        return self.ok(data)

    def _liq(self, params):
        if not self._interval_ok(params):
            return _json(200, {"code": "400", "msg": "interval not allowed for your plan"})
        step = self.PLAN_SECONDS[params["interval"]] * 1000
        n = int(params.get("limit", 3))
        t0 = 1_745_193_600_000
        return self.ok([{"time": t0 + i * step, "aggregated_long_liquidation_usd": 1000.0 * (i + 1),
                         "aggregated_short_liquidation_usd": 500.0 * (i + 1)} for i in range(n)])

    def _oi_hist(self, params):
        if not self._interval_ok(params):
            return _json(200, {"code": "400", "msg": "interval not allowed for your plan"})
        step = self.PLAN_SECONDS[params["interval"]] * 1000
        t0 = 1_745_193_600_000
        return self.ok([{"time": t0 + i * step, "open": str(100 + i), "high": str(110 + i), "low": str(90 + i),
                         "close": str(105 + i)} for i in range(int(params.get("limit", 3)))])


# --------------------------------------------------------------------------- Fear & Greed --
FNG_ROWS = [  # newest first, as the API sends them
    {"value": "40", "value_classification": "Fear", "timestamp": "1551157200", "time_until_update": "68499"},
    {"value": "47", "value_classification": "Neutral", "timestamp": "1551070800"},
    {"value": "31", "value_classification": "Fear", "timestamp": "1550984400"},
]


class FakeFearGreed(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.routes["/fng/"] = self._fng

    def _fng(self, params, headers, path):
        limit = int(params.get("limit", 1))
        rows = FNG_ROWS if limit == 0 else FNG_ROWS[:limit]
        return _json(200, {"name": "Fear and Greed Index", "data": rows, "metadata": {"error": None}})


# ---------------------------------------------------------------------------- feeds, Reddit --
@dataclass
class Item:
    title: str
    link: str
    published: datetime | None
    summary: str = ""


def rss(items: list[Item]) -> bytes:
    entries = "".join(
        f"<item><title>{escape(i.title)}</title><link>{escape(i.link)}</link>"
        f"<description>{escape(i.summary)}</description>"
        + (f"<pubDate>{format_datetime(i.published)}</pubDate>" if i.published else "") + "</item>"
        for i in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>News</title>'
            f"<link>http://news.test/</link><description>test</description>{entries}</channel></rss>").encode()


def atom(items: list[Item]) -> bytes:
    entries = "".join(
        f'<entry><title>{escape(i.title)}</title><link href="{escape(i.link)}"/><id>{escape(i.link)}</id>'
        f"<summary>{escape(i.summary)}</summary>"
        + (f"<published>{i.published.strftime('%Y-%m-%dT%H:%M:%SZ')}</published>"
           f"<updated>{i.published.strftime('%Y-%m-%dT%H:%M:%SZ')}</updated>" if i.published else "") + "</entry>"
        for i in items)
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title>'
            f'<id>urn:test</id><updated>2025-05-01T00:00:00Z</updated>{entries}</feed>').encode()


def reddit_listing(posts: list[Item]) -> dict:
    return {"kind": "Listing", "data": {"after": None, "dist": len(posts), "children": [
        {"kind": "t3", "data": {"id": f"p{n}", "name": f"t3_p{n}", "title": p.title, "selftext": p.summary,
                                "permalink": p.link, "url": "https://www.reddit.com" + p.link,
                                "created_utc": p.published.timestamp() if p.published else None,
                                "subreddit": "solana"}}
        for n, p in enumerate(posts)]}}


class FakeFeeds(FakeServer):
    """``rss[name]`` / ``atom[name]`` / ``reddit[sub]``: lists of :class:`Item` served live."""

    def __init__(self) -> None:
        super().__init__()
        self.rss: dict[str, list[Item]] = {}
        self.atom: dict[str, list[Item]] = {}
        self.reddit: dict[str, list[Item]] = {}
        self.prefix_routes = [("/rss/", self._rss), ("/atom/", self._atom), ("/r/", self._reddit)]

    def _rss(self, params, headers, path):
        return 200, rss(self.rss.get(path[len("/rss/"):], [])), "application/rss+xml"

    def _atom(self, params, headers, path):
        return 200, atom(self.atom.get(path[len("/atom/"):], [])), "application/atom+xml"

    def _reddit(self, params, headers, path):
        sub = path[len("/r/"):].split("/")[0]
        if headers.get("user-agent", "").startswith("python-"):
            return _json(429, {"message": "Too Many Requests", "error": 429})
        items = self.reddit.get(sub, [])[: int(params.get("limit", 25))]
        return _json(200, reddit_listing(items))

