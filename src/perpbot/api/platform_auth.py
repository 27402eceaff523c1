"""Authentication and errors of the platform endpoints.

Every platform route takes ``Authorization: Bearer <credential>``, where the credential is an
access token from ``POST /api/v1/auth/token`` (OAuth2 password flow) or a bot's API key
(``pbk_...``). :func:`role_dependency` resolves the caller (:class:`~perpbot.platform.access.Principal`)
and checks the route's minimum role (viewer < trader < admin): 401 without a valid credential,
403 when the role is too low. The operator token of a one-person install (``PERPBOT_API_TOKEN``)
does not open platform routes, and platform credentials do not open the operator routes.

:func:`install_error_handlers` maps the platform's exceptions to one-line JSON answers: 401
(bad credential), 403 (role), 404 (unknown row), 409 (insufficient funds, idempotency conflict,
order refused), 422 (bad input), 423 (account locked), 429 (login rate limit, with
``Retry-After``), 503 (oracle / chain not configured or unreachable).
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer

from perpbot.platform.access import AccessError, AccessInputError, Forbidden, LockedOut, Principal, RateLimited
from perpbot.platform.contract import ChainError, PolicyRefused
from perpbot.platform.keystore import KeyStoreError
from perpbot.platform.trading import OrderRefused
from perpbot.platform.wallet import IdempotencyConflict, InsufficientFunds, WalletError

PREFIX = "/api/v1"
#: Paths served by the platform routes: they authenticate their own callers, so the operator
#: token gate lets them through (exact path, or the prefix followed by "/"). ``/platform`` holds the
#: web pages (:mod:`perpbot.api.platform_pages`): static files without data, every call they make
#: goes through the API routes with the user's own access token.
PLATFORM_PREFIXES = tuple(PREFIX + p for p in ("/auth", "/user", "/users", "/audit", "/risk-profiles", "/wallet",
                                               "/oracle", "/chain", "/journal")) + ("/platform",)
MISSING = "missing credentials: send 'Authorization: Bearer <access token or API key>'"


def is_platform_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PLATFORM_PREFIXES)


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def error(status: int, detail: str, **headers: str) -> HTTPException:
    return HTTPException(status, detail, headers=headers or None)


ERRORS = {401: {"description": "missing, invalid or expired credential"},
          403: {"description": "the caller's role does not allow this"}}


def role_dependency(platform):
    """``role(min_role)`` -> a FastAPI dependency returning the caller's Principal."""
    bearer = OAuth2PasswordBearer(tokenUrl=PREFIX + "/auth/token", auto_error=False, scheme_name="PlatformBearer",
                                  description="access token from POST /api/v1/auth/token, or an API key (pbk_...)")

    def role(min_role: str):
        def current(request: Request, credential: str | None = Security(bearer)) -> Principal:
            if not credential:
                raise error(401, MISSING, **{"WWW-Authenticate": "Bearer"})
            try:
                who = platform.access.principal(credential)
            except AccessError as exc:
                raise error(401, str(exc), **{"WWW-Authenticate": "Bearer"}) from None
            if not who.allows(min_role):
                raise error(403, f"this needs the {min_role} role (you are {who.role})")
            request.state.principal = who
            return who

        return current

    return role


def _json(status: int, detail: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map platform exceptions to HTTP answers (module doc); messages are one line, never a secret."""

    @app.exception_handler(RateLimited)
    async def rate_limited(_r: Request, exc: RateLimited):
        return _json(429, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(LockedOut)
    async def locked_out(_r: Request, exc: LockedOut):
        return _json(423, str(exc))

    @app.exception_handler(AccessError)
    async def access_error(_r: Request, exc: AccessError):
        return _json(401, str(exc), {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def forbidden(_r: Request, exc: Forbidden):
        return _json(403, str(exc))

    @app.exception_handler(InsufficientFunds)
    async def insufficient(_r: Request, exc: InsufficientFunds):
        return _json(409, str(exc))

    @app.exception_handler(IdempotencyConflict)
    async def conflict(_r: Request, exc: IdempotencyConflict):
        return _json(409, str(exc))

    @app.exception_handler(OrderRefused)
    async def refused(_r: Request, exc: OrderRefused):
        return _json(409, exc.reason, source=exc.source, order_id=exc.order_id)

    @app.exception_handler(PolicyRefused)
    async def policy_refused(_r: Request, exc: PolicyRefused):
        return _json(409, exc.reason, source="policy")

    for kind in (WalletError, AccessInputError, KeyStoreError):
        async def bad_input(_r: Request, exc: Exception):
            return _json(422, str(exc))

        app.add_exception_handler(kind, bad_input)

    @app.exception_handler(ChainError)
    async def chain_down(_r: Request, exc: ChainError):
        return _json(503, str(exc))
