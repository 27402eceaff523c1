"""The platform's web pages: login, profile and wallet, static HTML + plain JS (no build step).

``GET /platform/login``, ``/platform/profile``, ``/platform/wallet`` (``/platform`` redirects to the
login page) and their assets ``GET /platform/assets/<name>`` (only the ``platform-*.js`` / ``.css``
files of :data:`STATIC_DIR`). The pages hold no data: their scripts read and write
through the platform API with the access token of ``POST /api/v1/auth/token``, which the browser
keeps in ``sessionStorage`` (gone when the tab closes, never in a cookie, so no cross-site request
can carry it). The pages therefore need no credential; the operator token gate lets ``/platform``
through (:func:`perpbot.api.platform_auth.is_platform_path`), and every API call they make is
checked by the API itself (role, owner).

Every page and asset is sent with :data:`SECURITY_HEADERS`: a Content-Security-Policy that allows
only this origin's scripts, styles and API (no inline script or style, no ``eval``, no framing, no
native form submission, so a password never lands in a URL), ``nosniff``, no referrer, no cache.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE_PREFIX = "/platform"
PAGES = {"login": "platform-login.html", "profile": "platform-profile.html", "wallet": "platform-wallet.html"}
_ASSET = re.compile(r"^platform-[a-z0-9-]{1,64}\.(js|css)$")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


def _file(path: Path, media_type: str | None = None) -> FileResponse:
    if not path.is_file():
        raise HTTPException(404, f"the platform pages are not installed ({path.name} is missing)")
    return FileResponse(path, media_type=media_type, headers=SECURITY_HEADERS)


def page_router(static_dir: Path = STATIC_DIR) -> APIRouter:
    """Routes of the three pages and their assets, read from ``static_dir``."""
    r = APIRouter(prefix=PAGE_PREFIX, include_in_schema=False)

    @r.get("")
    def root():
        return RedirectResponse(PAGE_PREFIX + "/login", status_code=307, headers=SECURITY_HEADERS)

    def add_page(name: str, filename: str) -> None:
        def page():
            return _file(static_dir / filename, "text/html")

        r.add_api_route("/" + name, page, methods=["GET"], name=f"platform_page_{name}")

    for name, filename in PAGES.items():
        add_page(name, filename)

    @r.get("/assets/{name}")
    def asset(name: str):
        if not _ASSET.match(name):
            raise HTTPException(404, f"no platform asset {name[:80]!r}")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return _file(static_dir / name, f"{kind}; charset=utf-8")

    return r
