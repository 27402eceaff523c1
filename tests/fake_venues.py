"""Tiny local venues for the oracle-guard tests: the public REST routes the real, unpatched ccxt
``binanceusdm`` and ``okx`` clients call to load markets and fetch one perpetual's ticker, served
on 127.0.0.1 (stdlib HTTP server in a thread). ``price`` and ``time_ms`` are set by the test.

Binance USDⓈ-M: ``GET /fapi/v1/exchangeInfo``, ``GET /fapi/v1/ticker/24hr?symbol=SOLUSDT``.
OKX v5: ``GET /api/v5/public/instruments?instType=SWAP``, ``GET /api/v5/market/ticker?instId=SOL-USDT-SWAP``.
Field names follow the venues' public API documentation.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import ccxt

from perpbot.devtools.binance_sim.info import exchange_info
from perpbot.devtools.okx_sim.info import instrument as okx_instrument


def _binance_info() -> dict:
    """Binance's exchangeInfo for SOLUSDT: the one copy lives in the Binance simulator."""
    return exchange_info(["SOLUSDT"])


def _okx_instrument() -> dict:
    """OKX's SOL-USDT-SWAP instruments row: the one copy lives in the OKX simulator."""
    return okx_instrument("SOLUSDT")


class FakeVenue:
    """One local venue speaking ``protocol`` ("binanceusdm" or "okx"); ``price`` USDT, ``time_ms`` UTC ms
    of its last trade (the ticker's timestamp)."""

    def __init__(self, protocol: str, price: float, time_ms: int) -> None:
        if protocol not in ("binanceusdm", "okx"):
            raise ValueError(f"unknown protocol {protocol!r}")
        self.protocol, self.price, self.time_ms = protocol, price, time_ms
        self.requests: list[str] = []
        venue = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):  # keep test output quiet
                pass

            def do_GET(self):
                url = urlparse(self.path)
                venue.requests.append(url.path)
                body = venue.answer(url.path, {k: v[0] for k, v in parse_qs(url.query).items()})
                data = json.dumps(body if body is not None else {"code": -1121, "msg": "not found"}).encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, q: dict) -> dict | None:
        p, t = f"{self.price:.4f}", self.time_ms
        if self.protocol == "binanceusdm":
            if path == "/fapi/v1/exchangeInfo":
                return _binance_info()
            if path == "/fapi/v1/ticker/24hr" and q.get("symbol") == "SOLUSDT":
                return {"symbol": "SOLUSDT", "priceChange": "0", "priceChangePercent": "0", "weightedAvgPrice": p,
                        "lastPrice": p, "lastQty": "3", "openPrice": p, "highPrice": p, "lowPrice": p,
                        "volume": "1000", "quoteVolume": "100000", "openTime": t - 86_400_000, "closeTime": t,
                        "firstId": 1, "lastId": 2, "count": 2}
            return None
        if path == "/api/v5/public/instruments" and q.get("instType") == "SWAP":
            return {"code": "0", "msg": "", "data": [_okx_instrument()]}
        if path == "/api/v5/market/ticker" and q.get("instId") == "SOL-USDT-SWAP":
            return {"code": "0", "msg": "", "data": [{
                "instType": "SWAP", "instId": "SOL-USDT-SWAP", "last": p, "lastSz": "1", "askPx": p, "askSz": "10",
                "bidPx": p, "bidSz": "10", "open24h": p, "high24h": p, "low24h": p, "volCcy24h": "1000",
                "vol24h": "1000", "ts": str(t), "sodUtc0": p, "sodUtc8": p}]}
        return None

    def client(self):
        """A real ccxt client of this protocol pointed at this server (no keys: public data only)."""
        if self.protocol == "binanceusdm":
            ex = ccxt.binanceusdm({"timeout": 5000})
            ex.urls["api"] = {**ex.urls["api"], "fapiPublic": f"{self.base_url}/fapi/v1"}
            return ex
        ex = ccxt.okx({"timeout": 5000, "options": {"fetchMarkets": {"types": ["swap"]}}})
        ex.urls["api"] = {"rest": self.base_url}
        return ex

    def __enter__(self) -> "FakeVenue":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
