"""The live node's operator interfaces: what ``perpbot run --mode live`` attaches to the bot's
control and event bus (:class:`perpbot.bot.control.BotControl`), so that a live entry, exit or risk
halt reaches the operator and the operator reaches the live position:

* notifications (Telegram / e-mail, when configured) and the Telegram command bot (``/status``,
  ``/pause``, ``/resume``, ``/forceexit`` ...), as under ``perpbot serve``;
* with ``--api``: the REST/WebSocket API and the dashboard on ``api_host:api_port`` (needs
  ``PERPBOT_API_TOKEN``), reading the live run from the ledger and the bot's live status.

:func:`check_api` runs before anything is built or sent (a missing token is one ``error:`` line,
exit code 2); :func:`attach` starts the interfaces; :meth:`Interfaces.stop` stops them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from perpbot.logs import get_logger

log = get_logger("perpbot.node")


def stop_on_signals(feed) -> None:
    """SIGINT / SIGTERM stop ``feed`` (the node ends after the current candle); call inside the
    node's event loop. Nothing is installed off the main thread or where the platform has no
    signal handlers (tests run nodes in threads)."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, feed.stop)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
            pass


def check_api(settings) -> str:
    """The API token of ``settings``; raises ConfigError (exit 2) when it is missing or too short."""
    from perpbot.api.auth import token_problem
    from perpbot.config import ConfigError

    token = settings.api_token.get_secret_value() if settings.api_token is not None else ""
    if not token.strip():
        raise ConfigError("PERPBOT_API_TOKEN is not set: export it (a long random string) — the API and the "
                          "dashboard refuse requests without it")
    if (problem := token_problem(token)) is not None:
        raise ConfigError(problem)
    return token


@dataclass
class Interfaces:
    """The running interfaces of a node (each None when not started)."""

    notifier: Any = None
    telegram: Any = None
    server: Any = None
    thread: threading.Thread | None = None
    url: str | None = None
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        """Stop the API server, the Telegram bot and the notifier (in that order); never raises."""
        for what, fn in (("api", self._stop_server), ("telegram", lambda: self.telegram and self.telegram.stop()),
                         ("notifier", lambda: self.notifier and self.notifier.stop())):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - shutting down: log and go on
                log.error("interface_stop_failed", interface=what, error=repr(exc))

    def _stop_server(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            if self.thread is not None:
                self.thread.join(15)


def attach(settings, control, *, bundle=None, api: bool = False, token: str | None = None, out=None) -> Interfaces:
    """Start the operator interfaces of a node over ``control`` (see the module docstring).

    Returns :class:`Interfaces`; with ``api`` the server is listening when this returns.
    Raises UserError when the API port is taken.
    """
    import time

    from perpbot.bot.context import BotContext
    from perpbot.cli.serve import listen, start_operator_channels

    ctx = BotContext(settings, control, bundle=bundle)
    found = Interfaces()
    if api:
        import uvicorn

        from perpbot.api import create_app

        app = create_app(ctx, token or check_api(settings))
        sock = listen(settings.api_host, settings.api_port)
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                               timeout_graceful_shutdown=2))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="perpbot-api", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        host = f"[{settings.api_host}]" if ":" in settings.api_host else settings.api_host
        found.server, found.thread, found.url = server, thread, f"http://{host}:{port}"
        if out is not None:
            out.print(f"API and dashboard on {found.url} (dashboard: /dashboard?token=<PERPBOT_API_TOKEN>)",
                      highlight=False, soft_wrap=True)
    found.notifier, found.telegram = start_operator_channels(settings, ctx)
    return found
