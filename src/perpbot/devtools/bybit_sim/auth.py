"""Request authentication of the Bybit facade (Bybit v5 "Integration Guidance: Authentication",
as ccxt's ``bybit.sign`` builds it for ``/v5`` paths).

A private request carries the headers ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP`` (ms),
``X-BAPI-RECV-WINDOW`` (ms, default 5000) and ``X-BAPI-SIGN`` = hex HMAC-SHA256(secret,
timestamp + api key + recv_window + payload), the payload being the query string exactly as sent
(GET) or the JSON body (POST). The timestamp must satisfy
``server_time - recv_window <= timestamp < server_time + 1000`` (server time = local clock +
injected skew). Refusals (HTTP 200, Bybit's codes): 10003 missing / unknown API key, 10004 bad
signature, 10002 timestamp outside the window (ccxt: InvalidNonce).
"""

from __future__ import annotations

import hashlib
import hmac

from perpbot.devtools.bybit_sim.errors import BybitError

DEFAULT_RECV_WINDOW = 5000


def sign(secret: str, payload: str) -> str:
    """hex(HMAC-SHA256(secret, payload)), Bybit's HMAC signature."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def verify(headers, payload: str, api_key: str, api_secret: str, now_ms: int) -> None:
    """Check one private request (``payload``: raw query string of a GET, body of a POST); raise
    :class:`BybitError` when it is refused."""
    key = headers.get("X-BAPI-API-KEY")
    if not key or not hmac.compare_digest(key, api_key):
        raise BybitError(10003, "API key is invalid.")
    ts, sig = headers.get("X-BAPI-TIMESTAMP") or "", headers.get("X-BAPI-SIGN") or ""
    recv = headers.get("X-BAPI-RECV-WINDOW") or str(DEFAULT_RECV_WINDOW)
    if not ts.isdigit() or not recv.isdigit():
        raise BybitError(10001, "params error: X-BAPI-TIMESTAMP / X-BAPI-RECV-WINDOW must be integers")
    t, window = int(ts), int(recv)
    if not now_ms - window <= t < now_ms + 1000:
        raise BybitError(10002, f"invalid request, please check your server timestamp or recv_window param. "
                                f"req_timestamp[{t}],server_timestamp[{now_ms}],recv_window[{window}]")
    if not hmac.compare_digest(sign(api_secret, ts + key + recv + payload), sig.lower()):
        raise BybitError(10004, "error sign! origin_string[" + ts + key + recv + payload + "]")
