"""API token authentication: one gate in front of every route except ``GET /health``.

The token (``PERPBOT_API_TOKEN``, at least :data:`MIN_TOKEN_LENGTH` characters) is accepted as
``Authorization: Bearer <token>``, as the query parameter ``?token=<token>`` or as the
``perpbot_token`` cookie (which ``GET /dashboard?token=...`` sets, HttpOnly + SameSite=Strict,
so the browser's asset and WebSocket requests carry it). Comparison uses
:func:`secrets.compare_digest`.

:class:`TokenGate` is a plain ASGI middleware, so it also covers 404/405 answers, the OpenAPI
schema and the WebSocket: an HTTP request without a valid token gets 401 JSON, a WebSocket
is accepted and closed at once with code 1008 (policy violation). With a valid token it
then applies the cross-origin rules of :mod:`perpbot.api.origin` (403: SameSite=Strict does
not stop another port of the same host from sending the cookie). The FastAPI security
dependencies (:func:`security_dependency`) repeat the token check per route and document the
three schemes in the OpenAPI schema. :func:`install_log_redaction` keeps the token (and any
secret-named query value) out of every log line.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import HTTPException, Security
from fastapi.security import APIKeyCookie, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from perpbot.api.origin import cross_origin_problem
from perpbot.logs import redact_logger, register_secret

COOKIE_NAME = "perpbot_token"
QUERY_NAME = "token"
PUBLIC_PATHS = frozenset({"/health"})
MISSING = ("missing API token: send 'Authorization: Bearer <token>', the query parameter ?token=<token> "
           "or the perpbot_token cookie")
INVALID = "invalid API token"
WS_POLICY_VIOLATION = 1008
#: Shortest accepted API token (characters): ``secrets.token_urlsafe(32)`` gives 43.
MIN_TOKEN_LENGTH = 32
MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def token_problem(token: str | None) -> str | None:
    """None when ``token`` is usable as the API token, else why not (one line, never the token itself)."""
    if not token or not token.strip():
        return f"set PERPBOT_API_TOKEN: the API refuses to start without a token (make one with {MAKE_TOKEN})"
    if len(token) < MIN_TOKEN_LENGTH:
        return (f"PERPBOT_API_TOKEN is too short ({len(token)} characters, at least {MIN_TOKEN_LENGTH} needed): "
                f"make one with {MAKE_TOKEN}")
    return None


def token_matches(candidate: str | None, token: str) -> bool:
    """Constant-time comparison (bytes, so non-ASCII input cannot raise)."""
    if not candidate:
        return False
    return secrets.compare_digest(candidate.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def offered_tokens(conn: HTTPConnection) -> dict[str, list[str]]:
    """Tokens offered by a request or WebSocket handshake, by scheme: bearer header, query, cookie."""
    out: dict[str, list[str]] = {"bearer": [], "query": [], "cookie": []}
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        out["bearer"].append(value.strip())
    out["query"].extend(conn.query_params.getlist(QUERY_NAME))
    cookie = conn.cookies.get(COOKIE_NAME)
    if cookie:
        out["cookie"].append(cookie)
    return out


def candidates(conn: HTTPConnection) -> list[str]:
    """Every token offered by a request or WebSocket handshake (bearer header, query, cookie)."""
    return [t for tokens in offered_tokens(conn).values() for t in tokens]


def valid_schemes(conn: HTTPConnection, token: str) -> set[str]:
    """The schemes (``bearer``, ``query``, ``cookie``) that carry a valid token."""
    return {scheme for scheme, tokens in offered_tokens(conn).items() if any(token_matches(t, token) for t in tokens)}


def check(conn: HTTPConnection, token: str) -> str | None:
    """None when one offered token is valid, else the 401 detail (missing / invalid)."""
    if valid_schemes(conn, token):
        return None
    return INVALID if candidates(conn) else MISSING


async def _send_json(send, status: int, detail: str, headers: tuple = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class TokenGate:
    """ASGI middleware: refuses every HTTP request / WebSocket but ``PUBLIC_PATHS`` without the token
    (401 / close 1008), then cross-origin state changes and WebSockets (403, :mod:`perpbot.api.origin`).

    ``bypass(path) -> bool`` lets through paths that authenticate their own callers (the platform
    routes, :func:`perpbot.api.platform_auth.is_platform_path`)."""

    def __init__(self, app: Any, token: str, bypass: Any = None) -> None:
        self.app = app
        self.token = token
        self.bypass = bypass

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in PUBLIC_PATHS or (
                self.bypass is not None and scope["type"] == "http" and self.bypass(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        schemes = valid_schemes(conn, self.token)
        if not schemes:
            problem = INVALID if candidates(conn) else MISSING
            if scope["type"] == "http":
                await _send_json(send, 401, problem, ((b"www-authenticate", b"Bearer"),))
                return
            message = await receive()  # websocket.connect
            if message.get("type") != "websocket.connect":
                return
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": problem[:120]})
            return
        refused = cross_origin_problem(conn, cookie_only=schemes == {"cookie"})
        if refused is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await _send_json(send, 403, refused)
        else:  # closing before accepting: the server answers the handshake with HTTP 403
            message = await receive()
            if message.get("type") == "websocket.connect":
                await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": refused[:120]})


def security_dependency(token: str):
    """A FastAPI dependency that checks the token again and documents the three schemes in OpenAPI."""
    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <PERPBOT_API_TOKEN>")
    query = APIKeyQuery(name=QUERY_NAME, auto_error=False, description="?token=<PERPBOT_API_TOKEN>")
    cookie = APIKeyCookie(name=COOKIE_NAME, auto_error=False, description="set by GET /dashboard?token=...")

    def require_token(b: HTTPAuthorizationCredentials | None = Security(bearer), q: str | None = Security(query),
                      c: str | None = Security(cookie)) -> None:
        offered = [v for v in (b.credentials if b else None, q, c) if v]
        if not any(token_matches(v, token) for v in offered):
            raise HTTPException(401, INVALID if offered else MISSING, headers={"WWW-Authenticate": "Bearer"})

    return require_token


# ------------------------------------------------------------------------------------ logs
#: Loggers that may see request URLs (uvicorn writes access lines and WebSocket handshakes there).
REDACTED_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "fastapi", "starlette", "perpbot.api")


def install_log_redaction(token: str) -> None:
    """Keep ``token`` and secret-named query values (``?token=``, ``?%74oken=``) out of every log line
    (:func:`perpbot.logs.redact`), and out of the uvicorn / API log records seen by any handler."""
    register_secret(token)
    for name in REDACTED_LOGGERS:
        redact_logger(name)
