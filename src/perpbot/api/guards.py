"""Request guards of the API: a body-size cap, 500s without internals, 422s that echo no large input.

- :class:`BodySizeLimit` (ASGI): a request whose ``Content-Length`` exceeds the cap is answered
  413 before a byte of its body is read; a streamed (chunked) body is counted as it arrives and
  refused with 413 as soon as it passes the cap, so memory stays bounded by the cap.
- :class:`ServerErrors` (ASGI): an unexpected exception becomes ``500 {"detail": "internal server
  error (id <8 hex>) ..."}`` — no exception type, message or traceback in the response — and
  one ``api_error`` log line with that id, the method, the path, the error and a plain traceback
  (no local variables; :mod:`perpbot.logs` redacts the line). The server does not log it again.
- :func:`validation_error`: the 422 handler. Each error keeps ``type``, ``loc`` and ``msg``
  (truncated), and ``input`` / ``ctx`` only when they are small and JSON-safe: a NaN or 1e400
  (JSON ``Infinity``) input used to make the 422 itself fail with a 500, a 200 MB input was echoed.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from perpbot.logs import get_logger

log = get_logger("perpbot.api")

#: Largest accepted request body (bytes); the biggest real one (POST /api/v1/backtests) is < 100.
MAX_BODY_BYTES = 64 * 1024
#: Validation errors listed in a 422 (the rest are counted).
MAX_ERRORS = 20
#: Longest ``input`` / ``ctx`` (as JSON) echoed in a 422, and longest ``msg`` / ``loc`` item (characters).
MAX_ECHO = 200


def too_large(limit: int) -> str:
    return f"request body too large: at most {limit} bytes are accepted"


class BodyTooLarge(HTTPException):
    """Raised while reading a streamed body that passes the cap (FastAPI turns it into the 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit), headers={"Connection": "close"})


async def send_json(send, status: int, detail: str, *, close: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """ASGI middleware: 413 for request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"]
        if declared:
            try:
                length = int(declared[0])
            except ValueError:
                length = -1
            if length < 0:
                await send_json(send, 400, "invalid Content-Length header", close=True)
                return
            if length > self.max_bytes:
                await send_json(send, 413, too_large(self.max_bytes), close=True)
                return
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:  # raised outside FastAPI's exception handling (e.g. in a middleware)
            if not started:
                await send_json(send, 413, too_large(self.max_bytes), close=True)


class ServerErrors:
    """ASGI middleware: unexpected exceptions -> one redacted log line + a 500 without internals."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message) -> None:
            nonlocal started
            started = started or message["type"] in ("http.response.start", "websocket.accept", "websocket.close")
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            error_id = secrets.token_hex(4)
            log.error("api_error", error_id=error_id, method=scope.get("method", "WEBSOCKET"), path=scope.get("path"),
                      error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            if scope["type"] == "http" and not started:
                await send_json(send, 500, f"internal server error (id {error_id}); the details are in the server log")


def _small_json(value: Any) -> Any:
    """``value`` as JSON-safe data when it is finite and at most :data:`MAX_ECHO` characters as JSON,
    else a sentinel meaning "leave it out"."""
    try:
        encoded = jsonable_encoder(value)
        if len(json.dumps(encoded, allow_nan=False)) <= MAX_ECHO:
            return encoded
    except (TypeError, ValueError, RecursionError):
        pass
    return _OMIT


_OMIT = object()


def _short(text: Any) -> Any:
    if isinstance(text, str) and len(text) > MAX_ECHO:
        return text[:MAX_ECHO] + "..."
    return text


def safe_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic / FastAPI validation errors as small JSON-safe dicts (see the module doc)."""
    out = []
    for e in errors[:MAX_ERRORS]:
        item = {"type": str(e.get("type", "")), "loc": [_short(x) if isinstance(x, str) else x
                                                        for x in e.get("loc", ())][:10],
                "msg": _short(str(e.get("msg", "")))}
        for key in ("input", "ctx"):
            if key in e and (value := _small_json(e[key])) is not _OMIT:
                item[key] = value
        out.append(item)
    if len(errors) > MAX_ERRORS:
        out.append({"type": "too_many_errors", "loc": [], "msg": f"{len(errors) - MAX_ERRORS} more errors not shown"})
    return out


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """The 422 handler: ``{"detail": [{"type", "loc", "msg", ("input"), ("ctx")}, ...]}``."""
    return JSONResponse({"detail": safe_errors(list(exc.errors()))}, status_code=422)
