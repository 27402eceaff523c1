"""Request authentication of the OKX facade (OKX API v5 "REST Authentication", as ccxt's
``okx.sign`` builds it).

A private request carries ``OK-ACCESS-KEY``, ``OK-ACCESS-PASSPHRASE``, ``OK-ACCESS-TIMESTAMP`` (ISO
8601 UTC with milliseconds, e.g. ``2020-12-08T09:08:57.715Z``) and ``OK-ACCESS-SIGN`` = Base64(
HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)), where requestPath is the path with
its ``?query`` exactly as sent (GET) and body the JSON body (POST). Refusals (HTTP 401, OKX's
codes): 50103 / 50104 / 50113 missing key / passphrase / signature, 50111 unknown key, 50105 wrong
passphrase, 50112 malformed timestamp, 50102 "Timestamp request expired" (more than 30 s from the
venue clock = local clock + injected skew, either way), 50113 "Invalid Sign".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from perpbot.devtools.okx_sim.errors import OkxError

EXPIRY_MS = 30_000


def sign(secret: str, payload: str) -> str:
    """Base64(HMAC-SHA256(secret, payload)), OKX's signature."""
    return base64.b64encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()


def _ms(ts: str) -> int:
    if not ts.endswith("Z"):
        raise ValueError(ts)
    return int(datetime.fromisoformat(ts[:-1] + "+00:00").timestamp() * 1000)


def verify(headers, method: str, path_qs: str, body: str, creds, now_ms: int) -> None:
    """Check one private request against ``creds`` (api_key, api_secret, passphrase); raise
    :class:`OkxError` when it is refused. ``path_qs``: the path and query exactly as sent."""
    key, phrase = headers.get("OK-ACCESS-KEY"), headers.get("OK-ACCESS-PASSPHRASE")
    ts, sig = headers.get("OK-ACCESS-TIMESTAMP"), headers.get("OK-ACCESS-SIGN")
    if not key:
        raise OkxError("50103", 'Request header "OK-ACCESS-KEY" cannot be empty.', 401)
    if not phrase:
        raise OkxError("50104", 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.', 401)
    if not sig:
        raise OkxError("50113", "Invalid Sign", 401)
    if not ts:
        raise OkxError("50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.', 401)
    if not hmac.compare_digest(key, creds.api_key):
        raise OkxError("50111", "Invalid OK-ACCESS-KEY", 401)
    if not hmac.compare_digest(phrase, creds.passphrase):
        raise OkxError("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401)
    try:
        t = _ms(ts)
    except ValueError:
        raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP", 401) from None
    if abs(now_ms - t) > EXPIRY_MS:
        raise OkxError("50102", "Timestamp request expired", 401)
    if not hmac.compare_digest(sign(creds.api_secret, ts + method.upper() + path_qs + (body or "")), sig):
        raise OkxError("50113", "Invalid Sign", 401)
