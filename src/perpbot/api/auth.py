"""API token authentication: one gate in front of every route except ``GET /health``.

The token (``PERPBOT_API_TOKEN``) is accepted as ``Authorization: Bearer <token>``, as the
query parameter ``?token=<token>`` or as the ``perpbot_token`` cookie (which
``GET /dashboard?token=...`` sets, HttpOnly + SameSite=Strict, so the browser's asset and
WebSocket requests carry it). Comparison uses :func:`secrets.compare_digest`.

:class:`TokenGate` is a plain ASGI middleware, so it also covers 404/405 answers, the OpenAPI
schema and the WebSocket: an HTTP request without a valid token gets 401 JSON, a WebSocket
is accepted and closed at once with code 1008 (policy violation). The FastAPI security
dependencies (:func:`security_dependency`) repeat the check per route and document the
three schemes in the OpenAPI schema. :func:`install_log_redaction` keeps the token (and any
``token=`` query value) out of the server's access and error logs.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from typing import Any

from fastapi import HTTPException, Security
from fastapi.security import APIKeyCookie, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

COOKIE_NAME = "perpbot_token"
QUERY_NAME = "token"
PUBLIC_PATHS = frozenset({"/health"})
MISSING = ("missing API token: send 'Authorization: Bearer <token>', the query parameter ?token=<token> "
           "or the perpbot_token cookie")
INVALID = "invalid API token"
WS_POLICY_VIOLATION = 1008


def token_matches(candidate: str | None, token: str) -> bool:
    """Constant-time comparison (bytes, so non-ASCII input cannot raise)."""
    if not candidate:
        return False
    return secrets.compare_digest(candidate.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def candidates(conn: HTTPConnection) -> list[str]:
    """Tokens offered by a request or WebSocket handshake: bearer header, query, cookie."""
    out: list[str] = []
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        out.append(value.strip())
    for v in conn.query_params.getlist(QUERY_NAME):
        out.append(v)
    cookie = conn.cookies.get(COOKIE_NAME)
    if cookie:
        out.append(cookie)
    return out


def check(conn: HTTPConnection, token: str) -> str | None:
    """None when one offered token is valid, else the 401 detail (missing / invalid)."""
    offered = candidates(conn)
    if any(token_matches(c, token) for c in offered):
        return None
    return INVALID if offered else MISSING


class TokenGate:
    """ASGI middleware: refuses every HTTP request / WebSocket but ``PUBLIC_PATHS`` without the token.

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
        problem = check(HTTPConnection(scope), self.token)
        if problem is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            body = json.dumps({"detail": problem}).encode()
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                    (b"www-authenticate", b"Bearer")]})
            await send({"type": "http.response.body", "body": body})
            return
        message = await receive()  # websocket.connect
        if message.get("type") != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": problem[:120]})


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
_QUERY_TOKEN = re.compile(r"(?i)((?:^|[?&;\s])token=)[^&\s\"']*")


class RedactTokens(logging.Filter):
    """Replaces known tokens and any ``token=<value>`` in a record's message by ``***``."""

    def __init__(self) -> None:
        super().__init__("perpbot.api.redact")
        self.tokens: set[str] = set()

    def redact(self, text: str) -> str:
        for t in self.tokens:
            text = text.replace(t, "***")
        return _QUERY_TOKEN.sub(r"\1***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACTOR = RedactTokens()
#: Loggers that may see request URLs (uvicorn writes access lines and WebSocket handshakes there).
REDACTED_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "fastapi", "perpbot.api")


def install_log_redaction(token: str) -> None:
    """Keep ``token`` and ``token=`` query values out of the uvicorn / API log records."""
    _REDACTOR.tokens.add(token)
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
