"""The bot's REST + WebSocket API and dashboard (FastAPI): ``create_app(ctx, token)``.

Modules: app (the application), routes (``/api/v1`` endpoints), ws (live events), jobs
(backtest queue), auth (token gate, log redaction), models (request/response schemas).
"""

from __future__ import annotations

from perpbot.api.app import create_app

__all__ = ["create_app"]
