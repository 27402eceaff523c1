"""Request authentication of the Binance facade (Binance "SIGNED (TRADE and USER_DATA) Endpoint
security", as ccxt's ``binance.sign`` builds it).

A signed request carries the ``X-MBX-APIKEY`` header and the parameters ``timestamp`` (ms),
optional ``recvWindow`` (ms, default 5000, at most 60000) and ``signature`` = hex
HMAC-SHA256(secret, totalParams), where totalParams is the query string concatenated with the
request body, without the ``&signature=...`` part, exactly as sent (percent-encoded). Refusals
(HTTP 400 / 401, Binance's codes): -2014 missing / malformed key, -2015 unknown key, -1102
missing timestamp / signature, -1022 bad signature, -1021 timestamp outside the recvWindow
(older than recvWindow or more than 1000 ms ahead of the venue clock = local clock + injected
skew).
"""

from __future__ import annotations

import hashlib
import hmac

from perpbot.devtools.binance_sim.errors import BinanceError, missing

DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60_000


def hmac_hex(secret: str, payload: str) -> str:
    """hex(HMAC-SHA256(secret, payload)), Binance's HMAC signature."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _split_signature(raw: str) -> tuple[str, str | None]:
    """(``raw`` without its ``signature`` parameter, the signature or None)."""
    if not raw:
        return "", None
    keep, sig = [], None
    for part in raw.split("&"):
        if part.startswith("signature="):
            sig = part[len("signature="):]
        else:
            keep.append(part)
    return "&".join(keep), sig


def verify(headers, raw_query: str, body: str, params: dict, api_key: str, api_secret: str, now_ms: int) -> None:
    """Check one signed request; raise :class:`BinanceError` when it is refused.

    ``raw_query``: the URL's query exactly as sent; ``body``: the form body; ``params``: the
    decoded parameters of both (timestamp / recvWindow are read from them).
    """
    key = headers.get("X-MBX-APIKEY")
    if not key:
        raise BinanceError(-2014, "API-key format invalid.", 401)
    if not hmac.compare_digest(key, api_key):
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    q, sig_q = _split_signature(raw_query)
    b, sig_b = _split_signature(body or "")
    sig = sig_q or sig_b
    ts = params.get("timestamp")
    if ts in (None, "") or not str(ts).isdigit():
        raise missing("timestamp")
    if not sig:
        raise missing("signature")
    try:
        window = int(params.get("recvWindow") or DEFAULT_RECV_WINDOW)
    except ValueError:
        raise BinanceError(-1130, "Data sent for parameter 'recvWindow' is not valid.") from None
    if not 0 < window <= MAX_RECV_WINDOW:
        raise BinanceError(-1131, "recvWindow must be less than 60000")
    t = int(ts)
    if t >= now_ms + 1000:
        raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now_ms - t > window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
    if not hmac.compare_digest(hmac_hex(api_secret, q + b), sig.lower()):
        raise BinanceError(-1022, "Signature for this request is not valid.")
