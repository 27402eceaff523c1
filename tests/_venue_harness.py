"""Harness of the venue request tests: real ccxt clients built by perpbot's factory
(:func:`perpbot.exchange.ccxt_adapter.make_exchange`) pointed at a :class:`_venue_stub.VenueStub`,
and an independent check of each venue's request signature with the test secret (the schemes
of the venues' API documentation: Binance HMAC-SHA256 hex of the query/body; Bybit v5 HMAC-SHA256
hex of timestamp + key + recv window + body/query; OKX v5 base64 HMAC-SHA256 of timestamp +
method + path + body; MEXC contract HMAC-SHA256 hex of key + request time + body/query; WEEX
base64 HMAC-SHA256 of timestamp + method + path?query + body; Indodax HMAC-SHA512 hex of the form
body; Tokocrypto HMAC-SHA256 hex of the query/body, Binance style)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from perpbot.config import load_settings
from perpbot.exchange.ccxt_adapter import make_exchange
from _venue_payloads import SYMBOL
from _venue_stub import Seen, point_at

KEY, SECRET, PASSPHRASE = "test-key-0123", "test-secret-4567", "test-pass-89"


def venue_settings(exchange: str, tmp_path, **kw):
    base = dict(exchange=exchange, symbol=SYMBOL, timeframe="5m", api_key=KEY, api_secret=SECRET,
                api_passphrase=PASSPHRASE, leverage=5, output_dir=tmp_path, stop_loss=1.0, take_profit=2.0)
    return load_settings(None, **{**base, **kw})


def venue_client(settings, stub, *, real_money: bool = False, environ: dict | None = None, timeout_ms: int = 2000):
    """perpbot's trading client of ``settings.exchange`` (demo unless ``real_money``), every REST url on ``stub``."""
    ex = make_exchange(settings, real_money=real_money, environ=environ,
                       config={"enableRateLimit": False, "timeout": timeout_ms})
    point_at(ex, stub.base_url)
    return ex


def _hmac(msg: str, b64: bool = False, algo=hashlib.sha256) -> str:
    digest = hmac.new(SECRET.encode(), msg.encode(), algo)
    return base64.b64encode(digest.digest()).decode() if b64 else digest.hexdigest()


def signed(venue: str, r: Seen) -> bool:
    """True when request ``r`` carries the test key and a valid signature made with the test secret."""
    h = r.headers
    if venue in ("binanceusdm", "tokocrypto"):
        payload = r.body if r.method in ("POST", "PUT") else r.raw_query
        unsigned, _, sig = payload.rpartition("&signature=")
        return h.get("x-mbx-apikey") == KEY and sig == _hmac(unsigned)
    if venue == "bybit":
        payload = r.body if r.method == "POST" else r.raw_query
        msg = h.get("x-bapi-timestamp", "") + KEY + h.get("x-bapi-recv-window", "") + payload
        return h.get("x-bapi-api-key") == KEY and h.get("x-bapi-sign") == _hmac(msg)
    if venue == "okx":
        path = r.path + (f"?{r.raw_query}" if r.raw_query else "")
        msg = h.get("ok-access-timestamp", "") + r.method + path + r.body
        return (h.get("ok-access-key") == KEY and h.get("ok-access-passphrase") == PASSPHRASE
                and h.get("ok-access-sign") == _hmac(msg, b64=True))
    if venue == "mexc":
        payload = r.body if r.method == "POST" else r.raw_query
        return h.get("apikey") == KEY and h.get("signature") == _hmac(KEY + h.get("request-time", "") + payload)
    if venue == "weex":
        path = r.path + (f"?{r.raw_query}" if r.raw_query else "")
        msg = h.get("access-timestamp", "") + r.method + path + r.body
        return (h.get("access-key") == KEY and h.get("access-passphrase") == PASSPHRASE
                and h.get("access-sign") == _hmac(msg, b64=True))
    if venue == "indodax":
        return h.get("key") == KEY and h.get("sign") == _hmac(r.body, algo=hashlib.sha512)
    raise ValueError(venue)


#: The header that carries the API key of each venue (its presence marks a private request).
KEY_HEADER = {"binanceusdm": "x-mbx-apikey", "bybit": "x-bapi-api-key", "okx": "ok-access-key", "mexc": "apikey",
              "weex": "access-key", "indodax": "key", "tokocrypto": "x-mbx-apikey"}


def calls(stub, *paths: str) -> list[tuple]:
    """(method, path) of the recorded requests (to ``paths`` only, when given)."""
    return [(r.method, r.path) for r in stub.requests(*paths)]


def without(d: dict, *keys: str) -> dict:
    """``d`` less the per-request fields (timestamps, signatures, receive windows)."""
    return {k: v for k, v in d.items() if k not in keys}


BINANCE_VOLATILE = ("timestamp", "recvWindow", "signature")
