"""The FastAPI application: REST + WebSocket API and the dashboard of one bot.

``create_app(ctx, token)`` wires :mod:`perpbot.api.routes` (``/api/v1/...``), the WebSocket
(:mod:`perpbot.api.ws`), the backtest job queue (:mod:`perpbot.api.jobs`), the dashboard
(``GET /dashboard`` + ``/static/...``, plotly.js served from the installed ``plotly``
package, no CDN) and the token gate (:mod:`perpbot.api.auth`): everything but
``GET /health`` needs the token. The OpenAPI schema is at ``/openapi.json`` (token needed).

Middleware, outermost first: :class:`perpbot.api.guards.ServerErrors` (500 without internals, one
redacted log line), :class:`perpbot.api.guards.BodySizeLimit` (413 over ``max_body_bytes``),
:class:`perpbot.api.auth.TokenGate` (401, then the cross-origin rules of :mod:`perpbot.api.origin`: 403).
"""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse

from perpbot import __version__
from perpbot.api import models as m
from perpbot.api.auth import COOKIE_NAME, QUERY_NAME, TokenGate, install_log_redaction, security_dependency, \
    token_matches, token_problem
from perpbot.api.guards import MAX_BODY_BYTES, BodySizeLimit, ServerErrors, validation_error
from perpbot.api.jobs import BacktestJobs
from perpbot.api.routes import register_routes, status_payload
from perpbot.api.ws import make_ws_endpoint
from perpbot.storage.convert import UnknownRunError

STATIC_DIR = Path(__file__).resolve().parent / "static"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _token_text(token) -> str:
    if hasattr(token, "get_secret_value"):  # a pydantic SecretStr (settings.api_token)
        token = token.get_secret_value()
    problem = token_problem(token if isinstance(token, str) else None)
    if problem is not None:
        raise ValueError(problem)
    return token


def health_payload(ctx, now: float | None = None) -> dict:
    """``/health``: version, process uptime and the bot's liveness (running, last candle, its lag, errors)."""
    import time

    import psutil

    from perpbot.data import timeframe_to_ms

    now = time.time() if now is None else now
    st = ctx.control.status()
    last = st.get("last_candle_time")
    lag = None
    if last:
        import pandas as pd

        closed = pd.Timestamp(last).timestamp() + timeframe_to_ms(st.get("timeframe") or ctx.settings.timeframe) / 1000
        lag = round(max(0.0, now - closed), 3)
    return {"status": "ok", "version": __version__, "uptime_s": round(now - psutil.Process().create_time(), 3),
            "running": bool(st.get("running")), "last_candle_time": last, "lag_s": lag,
            "errors": int(st.get("errors") or 0)}


def create_app(ctx, token: str, *, max_body_bytes: int = MAX_BODY_BYTES, platform=None) -> FastAPI:
    """The API over ``ctx`` (a :class:`perpbot.bot.context.BotContext`).

    Args:
        ctx: what the API reads and controls (settings, BotControl, ledger, candles).
        token: the bearer token (``PERPBOT_API_TOKEN``, at least 32 characters); a ``SecretStr`` is
            accepted too.
        max_body_bytes: larger request bodies are refused with 413.
        platform: a :class:`perpbot.platform.service.Platform` to serve the multi-user routes
            (:mod:`perpbot.api.platform_routes`, their own logins), or None (one-person install).

    Raises:
        ValueError: ``token`` is missing ("set PERPBOT_API_TOKEN ...") or shorter than
            :data:`perpbot.api.auth.MIN_TOKEN_LENGTH` ("... is too short ...").
    """
    token = _token_text(token)
    _ = ctx.ledger  # open + migrate the ledger once here: first-time migrations from many threads would race
    jobs = BacktestJobs(ctx)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        jobs.close()

    app = FastAPI(title="perpbot API", version=__version__, lifespan=lifespan, redoc_url=None,
                  description="REST + WebSocket API of a perpbot trading bot. Every endpoint but GET /health "
                              "needs the token (PERPBOT_API_TOKEN). Money in USDT, quantities in the base asset, "
                              "fractions (not percents), times ISO-8601 UTC, NaN/inf as null.")
    app.state.ctx = ctx
    app.state.jobs = jobs
    auth = security_dependency(token)
    bypass = None
    if platform is not None:
        from perpbot.api.platform_auth import is_platform_path

        bypass = is_platform_path
    install_log_redaction(token)
    # middleware runs in the reverse order of adding: ServerErrors -> BodySizeLimit -> TokenGate -> routes
    app.add_middleware(TokenGate, token=token, bypass=bypass)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(ServerErrors)
    app.add_exception_handler(RequestValidationError, validation_error)

    @app.exception_handler(UnknownRunError)
    async def unknown_run(_request: Request, exc: UnknownRunError):
        return JSONResponse({"detail": str(exc.args[0]) if exc.args else "run not found"}, status_code=404)

    @app.get("/health", response_model=m.HealthOut, summary="Liveness (no token needed)", tags=["public"])
    def health():
        return health_payload(ctx)

    register_routes(app, ctx, jobs, auth)
    if platform is not None:
        from perpbot.api.platform_routes import include_platform

        include_platform(app, platform)
    app.add_api_websocket_route("/api/v1/ws", make_ws_endpoint(ctx, lambda: status_payload(ctx)), name="events_ws")

    # ------------------------------------------------------------------ dashboard
    @app.get("/dashboard", include_in_schema=False, dependencies=[Depends(auth)])
    def dashboard(request: Request):
        page = STATIC_DIR / "dashboard.html"
        if not page.is_file():
            raise HTTPException(404, f"the dashboard is not installed ({page} is missing)")
        response = FileResponse(page, media_type="text/html")
        offered = request.query_params.get(QUERY_NAME)
        if offered and token_matches(offered, token):
            response.set_cookie(COOKIE_NAME, offered, httponly=True, samesite="strict", path="/")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the ?token= URL never leaks as a Referer
        return response

    @app.get("/static/{name}", include_in_schema=False, dependencies=[Depends(auth)])
    def static(name: str):
        if name == "plotly.min.js":
            path = PLOTLY_JS
        elif _ASSET_NAME.match(name):
            path = STATIC_DIR / name
        else:
            raise HTTPException(404, f"no static file {name!r}")
        if not path.is_file():
            raise HTTPException(404, f"no static file {name!r}")
        return FileResponse(path)

    return app
