"""Request authentication of the Bitget simulator (REST headers and websocket login).

REST pre-hash (Bitget v2 "signature" doc, as ccxt's ``bitget.sign`` builds it)::

    ACCESS-TIMESTAMP + METHOD + requestPath [+ "?" + queryString] + body

``requestPath`` starts with ``/api``; the query string is the raw (not percent-encoded)
``k=v&...`` in the order sent; ``body`` is the JSON text of a POST. Signature =
base64(HMAC-SHA256(secret, pre-hash)). Websocket login signs ``timestamp + "GET" +
"/user/verify"``.

Errors are Bitget's codes, all with HTTP 400 (as the real API answers, e.g. 40009):
40001 / 40003 / 40005 / 40011 missing key / sign / timestamp / passphrase, 40006 invalid
ACCESS_KEY, 40008 timestamp more than 30 s from the venue clock (local clock + injected skew), 40012 wrong passphrase,
40009 bad signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import unquote_plus

TIMESTAMP_WINDOW_MS = 30_000


@dataclass(frozen=True)
class Credentials:
    """One API key: ``api_key``, ``api_secret`` (HMAC secret) and ``passphrase``."""

    api_key: str
    api_secret: str
    passphrase: str


class AuthError(Exception):
    """Authentication failed: ``code`` and ``msg`` are Bitget's error code and message."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg


def signature(secret: str, prehash: str) -> str:
    """base64(HMAC-SHA256(secret, prehash)) as Bitget expects it."""
    mac = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def verify_rest(headers, method: str, path: str, query_string: str, body: str, creds: Credentials,
                now_ms: int | None = None) -> None:
    """Check the ACCESS-* headers of one REST request; raise :class:`AuthError` when wrong.

    ``headers`` is a case-insensitive mapping; ``query_string`` the raw query part of the URL
    (percent-encoded or not: both forms are accepted); ``body`` the request body text.
    """
    key = headers.get("ACCESS-KEY")
    sign = headers.get("ACCESS-SIGN")
    ts = headers.get("ACCESS-TIMESTAMP")
    passphrase = headers.get("ACCESS-PASSPHRASE")
    if not key:
        raise AuthError("40001", "ACCESS_KEY cannot be empty")
    if not sign:
        raise AuthError("40003", "Signature cannot be empty")
    if not ts or not ts.isdigit():
        raise AuthError("40005", "Invalid ACCESS_TIMESTAMP")
    if not passphrase:
        raise AuthError("40011", "ACCESS_PASSPHRASE cannot be empty")
    if not hmac.compare_digest(key, creds.api_key):
        raise AuthError("40006", "Invalid ACCESS_KEY")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - int(ts)) > TIMESTAMP_WINDOW_MS:
        raise AuthError("40008", "Request timestamp expired")
    if not hmac.compare_digest(passphrase, creds.passphrase):
        raise AuthError("40012", "apikey/password is incorrect")
    candidates = {query_string, unquote_plus(query_string)} if query_string else {""}
    for q in candidates:
        prehash = ts + method.upper() + path + (("?" + q) if q else "") + (body or "")
        if hmac.compare_digest(signature(creds.api_secret, prehash), sign):
            return
    raise AuthError("40009", "sign signature error")


def verify_ws_login(arg: dict, creds: Credentials) -> None:
    """Check one websocket login argument ``{apiKey, passphrase, timestamp, sign}``.

    Raises :class:`AuthError` (30005-style codes of Bitget's websocket: 30011 invalid key,
    30012 invalid passphrase, 30015 invalid sign).
    """
    if arg.get("apiKey") != creds.api_key:
        raise AuthError("30011", "Invalid ACCESS_KEY")
    if arg.get("passphrase") != creds.passphrase:
        raise AuthError("30012", "Invalid ACCESS_PASSPHRASE")
    ts = str(arg.get("timestamp", ""))
    expected = signature(creds.api_secret, ts + "GET" + "/user/verify")
    if not hmac.compare_digest(expected, str(arg.get("sign", ""))):
        raise AuthError("30015", "Invalid sign")
