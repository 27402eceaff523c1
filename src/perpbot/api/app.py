"""The FastAPI application: REST + WebSocket API and the dashboard of one bot.

``create_app(ctx, token)`` wires :mod:`perpbot.api.routes` (``/api/v1/...``), the WebSocket
(:mod:`perpbot.api.ws`), the backtest job queue (:mod:`perpbot.api.jobs`), the dashboard
(``GET /dashboard`` + ``/static/...``, plotly.js served from the installed ``plotly``
package, no CDN) and the token gate (:mod:`perpbot.api.auth`): everything but
``GET /health`` needs the token. The OpenAPI schema is at ``/openapi.json`` (token needed).
"""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse

from perpbot import __version__
from perpbot.api import models as m
from perpbot.api.auth import COOKIE_NAME, QUERY_NAME, TokenGate, install_log_redaction, security_dependency, \
    token_matches
from perpbot.api.jobs import BacktestJobs
from perpbot.api.routes import register_routes, status_payload
from perpbot.api.ws import make_ws_endpoint
from perpbot.logs import get_logger
from perpbot.storage.convert import UnknownRunError

log = get_logger("perpbot.api")

STATIC_DIR = Path(__file__).resolve().parent / "static"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _token_text(token) -> str:
    if hasattr(token, "get_secret_value"):  # a pydantic SecretStr (settings.api_token)
        token = token.get_secret_value()
    if not isinstance(token, str) or not token.strip():
        raise ValueError("set PERPBOT_API_TOKEN: the API refuses to start without a token")
    return token


def create_app(ctx, token: str, platform=None) -> FastAPI:
    """The API over ``ctx`` (a :class:`perpbot.bot.context.BotContext`).

    Args:
        ctx: what the API reads and controls (settings, BotControl, ledger, candles).
        token: the bearer token (``PERPBOT_API_TOKEN``); a ``SecretStr`` is accepted too.
        platform: a :class:`perpbot.platform.service.Platform` to serve the multi-user routes
            (:mod:`perpbot.api.platform_routes`, their own logins), or None (one-person install).

    Raises:
        ValueError: ``token`` is empty / missing ("set PERPBOT_API_TOKEN").
    """
    token = _token_text(token)
    ctx.ledger  # open + migrate the ledger once here: first-time migrations from many threads would race
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
    app.add_middleware(TokenGate, token=token, bypass=bypass)
    install_log_redaction(token)

    @app.exception_handler(UnknownRunError)
    async def unknown_run(_request: Request, exc: UnknownRunError):
        return JSONResponse({"detail": str(exc.args[0]) if exc.args else "run not found"}, status_code=404)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.error("api_error", path=request.url.path, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    @app.get("/health", response_model=m.HealthOut, summary="Liveness (no token needed)", tags=["public"])
    def health():
        return {"status": "ok", "version": __version__}

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
