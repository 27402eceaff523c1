"""Cross-origin rules of the API (cross-site request forgery and cross-site WebSocket hijacking).

The dashboard cookie is ``SameSite=Strict``, but "site" ignores the port: a page served by any
other program on the same host (``http://127.0.0.1:9999``) is same-site, so the browser attaches
the cookie to its requests to the API. An origin is scheme + host + port (RFC 6454), and the API
compares it with its own, as the request addressed it (the ``Host`` header and the scheme of the
connection; behind a TLS proxy, the proxy must pass ``Host`` and ``X-Forwarded-Proto``):

- a state-changing HTTP request (any method but GET / HEAD / OPTIONS) whose ``Origin`` (or,
  without one, ``Referer``) names another origin is refused with 403, whatever the credential;
  ``Origin: null`` (sandboxed frames, privacy redirects) is another origin;
- a state-changing request authenticated only by the cookie must carry one of the two headers:
  browsers always send ``Origin`` with such requests, so a cookie without it is refused (403);
- a WebSocket handshake with a foreign ``Origin`` is refused (HTTP 403): browsers always send
  ``Origin`` on WebSocket handshakes, and a cross-origin page can read a WebSocket's messages.

Scripts are not browsers: a bearer-token request (or WebSocket) without ``Origin`` works as before.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}
COOKIE_NEEDS_ORIGIN = ("a state-changing request authenticated only by the dashboard cookie must carry a same-origin "
                       "Origin header (scripts: send 'Authorization: Bearer <token>')")


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin or URL (``http``/``https`` only, host lower-case, default
    port filled in); None when ``value`` is not one (``null``, garbage, another scheme)."""
    try:
        parts = urlsplit(value.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError:  # a bad port or bracketed host
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host.lower(), port if port is not None else DEFAULT_PORTS[scheme]


def server_origin(conn: HTTPConnection) -> tuple[str, str, int] | None:
    """The origin the request was addressed to: the connection's scheme (``ws`` counts as ``http``,
    ``wss`` as ``https``) with the ``Host`` header (else the listening address)."""
    scheme = {"ws": "http", "wss": "https"}.get(conn.scope.get("scheme", "http"), conn.scope.get("scheme", "http"))
    host = conn.headers.get("host")
    if not host:
        server = conn.scope.get("server") or ("", None)
        host = f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])
        if server[1] is not None:
            host += f":{server[1]}"
    return parse_origin(f"{scheme}://{host}")


def cross_origin_problem(conn: HTTPConnection, *, cookie_only: bool) -> str | None:
    """None when the request / handshake may proceed, else the 403 detail (see the module doc).

    Args:
        conn: the authenticated request or WebSocket handshake.
        cookie_only: the only valid credential it carries is the dashboard cookie.
    """
    websocket = conn.scope["type"] == "websocket"
    if not websocket and conn.scope.get("method", "GET").upper() in SAFE_METHODS:
        return None
    header, value = "Origin", conn.headers.get("origin")
    if value is None and not websocket:
        header, value = "Referer", conn.headers.get("referer")
    if value is None:
        return COOKIE_NEEDS_ORIGIN if cookie_only and not websocket else None
    own, theirs = server_origin(conn), parse_origin(value)
    if own is not None and theirs == own:
        return None
    shown = f"{theirs[0]}://{theirs[1]}:{theirs[2]}" if theirs else "(not an http(s) origin)"  # never a full URL
    return f"cross-origin request refused: the {header} {shown[:120]} is not this server's origin"
