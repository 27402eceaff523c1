"""``perpbot serve``: the REST/WebSocket API and the dashboard, optionally beside a paper replay.

Serves :func:`perpbot.api.create_app` with uvicorn over the existing ledger, on
``settings.api_host:api_port`` unless ``--host`` / ``--port`` say otherwise. With
``--replay FILE`` the paper bot (:func:`perpbot.app.paper.paper_job`) runs over that file in
a background thread with the API's own :class:`perpbot.bot.control.BotControl`, so the API,
the dashboard and the WebSocket see its live events and can pause / resume / force-exit it;
``--speed N`` paces it at N candles per second (0 = as fast as possible). The replay starts
once the server listens; the server keeps serving after the replay ends (Ctrl-C stops both).

``PERPBOT_API_TOKEN`` (environment only, at least 32 characters) is required: without it, or
with a shorter one, the command prints one ``error:`` line and exits with code 2. The token is
never printed or logged. The API speaks plain HTTP: binding an address other than loopback
prints a warning (the token and the data would cross the network unencrypted).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from pathlib import Path
from typing import Optional

import pandas as pd
import typer
from rich.markup import escape

from perpbot.cli import common as cli
from perpbot.config import ConfigError
from perpbot.logs import get_logger

log = get_logger("perpbot.api")


def replay_candles(market, control):
    """A BotContext candles source: the replayed candles up to the bot's latest cycle."""
    candles = market.candles

    def source(_symbol: str) -> pd.DataFrame:
        last = control.status().get("last_candle_time")
        if last is None:
            return candles.iloc[:0]
        return candles.iloc[: int(candles["timestamp"].searchsorted(pd.Timestamp(last), side="right"))]

    return source


def run_paper(settings, market, strategy: str, *, bundle, ledger, control, progress):
    """:func:`perpbot.app.paper.paper_job` driven by ``control``; returns (bot, run_id)."""
    from perpbot.app import paper

    return paper.paper_job(settings, market, strategy, bundle=bundle, ledger=ledger, progress=progress,
                          control=control)


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket (uvicorn listens on it); a busy port raises UserError."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise cli.UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address (127.0.0.0/8, ::1);
    wildcards (0.0.0.0, ::) and unresolvable names are not."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def plain_http_warning(host: str, port: int) -> str | None:
    """The warning for serving plain HTTP on a non-loopback address (None on loopback)."""
    if is_loopback(host):
        return None
    return (f"WARNING: the API listens on {host}:{port} over plain HTTP, reachable from other machines: the API "
            f"token, the dashboard cookie and the bot's data cross the network unencrypted. Bind 127.0.0.1 "
            f"(api_host / --host) and reach it through an SSH tunnel or a TLS reverse proxy.")


def open_platform(settings):
    """The multi-user :class:`~perpbot.platform.service.Platform` on the ledger database, after its
    start-up reconciliation (margin locked by orders a crash left unsent is released).
    Raises ConfigError (one line) without the platform extra or its secrets."""
    try:
        from perpbot.platform.keystore import KeyStoreError
        from perpbot.platform.service import Platform
    except ImportError as exc:
        raise ConfigError(f'--platform needs the platform extra: pip install "perpbot[platform]" ({exc.name} missing)') from None
    try:
        users = Platform(settings.ledger, settings)
    except (KeyStoreError, ValueError) as exc:
        raise ConfigError(f"--platform: {exc}") from None
    released = users.start()
    if released:
        log.warning("platform_reconciled", released=len(released))
    return users


def serve(config: Optional[Path] = cli.ConfigOpt,
          host: Optional[str] = typer.Option(None, help="bind address (default: settings api_host)"),
          port: Optional[int] = typer.Option(None, help="TCP port (default: settings api_port)"),
          replay: Optional[Path] = typer.Option(None, help="candles Parquet: also run the paper bot over it"),
          last: Optional[int] = typer.Option(None, help="replay only the last N candles of the file"),
          strategy: str = cli.strategy_option("replayed strategy: ai | meta:ema-cross | meta:donchian | meta:scoring | "
                                              "ema-cross | donchian | scoring | buy-and-hold"),
          speed: float = typer.Option(0.0, help="replay pace in candles per second (0 = as fast as possible)"),
          model_path: Optional[Path] = typer.Option(None, "--model-path", help="saved model (default from settings)"),
          platform: bool = typer.Option(False, "--platform",
                                        help="also serve the multi-user platform (accounts, wallet, keys) on the "
                                             "ledger database; needs PERPBOT_JWT_SECRET and PERPBOT_MASTER_KEY"),
          ) -> None:
    """Serve the REST/WebSocket API and the dashboard (needs PERPBOT_API_TOKEN); --replay also runs the paper bot."""
    with cli.handled():  # the api extra: one line naming it when missing
        from perpbot.extras import require

        uvicorn = require("uvicorn", "perpbot serve")
        require("fastapi", "perpbot serve")

    from perpbot.api import create_app
    from perpbot.cli.node import check_api
    from perpbot.bot.context import BotContext
    from perpbot.bot.control import BotControl
    from perpbot.app.jobs import load_model_for
    from perpbot.data.market import check_enough_candles, load_market_for

    with cli.handled():
        s = cli.settings_for(config, api_host=host, api_port=port)
        token = check_api(s)
        if not speed >= 0:
            raise cli.UsageError(f"--speed must be >= 0 candles per second, got {speed}")
        if last is not None and last < 1:
            raise cli.UsageError(f"--last must be >= 1, got {last}")
        control = BotControl(mode="paper" if replay else s.mode, strategy=strategy, symbol=s.symbol,
                             timeframe=s.timeframe)
        market = bundle = None
        if replay is not None:
            market = load_market_for(s, replay)
            if last is not None:
                market = market.slice(max(0, len(market.candles) - last))
            check_enough_candles(market, s.warmup_bars)
            from perpbot.strategy.signals import is_model_strategy

            bundle = load_model_for(s, model_path, strategy) if is_model_strategy(strategy) else None
        elif last is not None:
            raise cli.UsageError("--last needs --replay FILE")
        ctx = BotContext(s, control, candles_source=replay_candles(market, control) if market else None,
                         bundle=bundle)
        users = open_platform(s) if platform else None
        app = create_app(ctx, token, platform=users)  # also creates / migrates the ledger, before any thread uses it
        sock = listen(s.api_host, s.api_port)
        server = uvicorn.Server(uvicorn.Config(app, host=s.api_host, port=s.api_port, log_config=None,
                                               access_log=True, lifespan="on"))
        stop = threading.Event()
        thread = None
        if market is not None:
            thread = threading.Thread(target=_replay, name="perpbot-replay", daemon=True,
                                      args=(s, market, strategy, bundle, control, server, stop, speed))
            thread.start()
        notifier, telegram = start_operator_channels(s, ctx)
        shown = f"[{s.api_host}]" if ":" in s.api_host else s.api_host
        cli.console.print(f"perpbot API on http://{shown}:{s.api_port}  (dashboard: /dashboard?token=<PERPBOT_API_TOKEN>,"
                          f" ledger {s.ledger_display}{', replaying ' + str(replay) if replay else ''}); Ctrl-C stops",
                          soft_wrap=True, highlight=False)
        if (warning := plain_http_warning(s.api_host, s.api_port)) is not None:
            log.warning("api_plain_http", host=s.api_host, port=s.api_port)
            cli.err_console.print(f"[bold red]{escape(warning)}[/]", highlight=False, soft_wrap=True)
        try:
            server.run(sockets=[sock])
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)
            if telegram is not None:
                telegram.stop()
            if notifier is not None:
                notifier.stop()
            sock.close()


def start_operator_channels(settings, ctx):
    """Start notifications (Telegram / e-mail, when configured) and the Telegram command bot
    (when a token and chat ids are set). Returns (notifier or None, telegram runner or None).

    The Bot API refusing the token stops the command (UserError: one line); the Bot API down or
    answering garbage leaves the command bot off with a warning line and an error log line, and
    the node runs on (a notification outage must not keep a node from managing its positions)."""
    from perpbot.notify.channels import default_channels

    channels = default_channels(settings)
    notifier = telegram = None
    if channels:
        from perpbot.notify.notifier import Notifier

        notifier = Notifier(settings, ctx, channels).start()
        cli.console.print("notifications: " + ", ".join(type(c).__name__ for c in channels), highlight=False)
    if settings.telegram_token is not None and settings.telegram_chat_ids:
        from telegram.error import InvalidToken

        from perpbot.masking import redact_text
        from perpbot.notify.telegram_bot import run_bot_in_thread, telegram_problem

        try:
            telegram = run_bot_in_thread(settings, ctx)
        except Exception as exc:
            problem = telegram_problem(exc, settings.telegram_base_url, "PERPBOT_TELEGRAM_TOKEN", "telegram commands")
            if problem is None:
                raise
            if isinstance(exc, InvalidToken):  # a setting to fix: nothing starts (one error line, exit 1)
                if notifier is not None:
                    notifier.stop()
                raise cli.UserError(problem) from None
            # the Bot API is down: the node runs on (API / dashboard, notifications, exchange-side stops)
            log.error("telegram_commands_unavailable", error=problem, file_only=True)  # (the warning line below)
            cli.err_console.print(f"[bold yellow]warning:[/] {escape(redact_text(problem))}; running without the Telegram "
                                  "commands (restart to retry them)", highlight=False, soft_wrap=True)
        else:
            cli.console.print(f"telegram commands: {len(settings.telegram_chat_ids)} authorised chat(s)",
                              highlight=False)
    return notifier, telegram


def _replay(settings, market, strategy, bundle, control, server, stop: threading.Event, speed: float) -> None:
    """The replay thread: waits for the server, then runs the paper bot (paced by ``speed``).

    Nothing it meets ends the server or passes silently: a ledger write the database refuses
    is kept and retried by the bot itself (counted in the status' ``errors``, see
    :mod:`perpbot.bot.paper_ledger`); any error that ends the replay (the ledger cannot be
    opened, a model error ...) is counted in ``errors``, shown as ``last_error`` in /status,
    published as an ``error`` event and logged, and the API keeps serving. A server that
    stops mid-replay leaves the run ``abandoned`` (``perpbot run --mode paper --resume``).
    """
    from perpbot.bot.paper import ReplayInterrupted
    from perpbot.storage.ledger import Ledger

    while not server.started:
        if stop.wait(0.05):
            return
    t0 = time.monotonic()

    def pace(done: int, total: int) -> None:
        if stop.is_set():
            raise ReplayInterrupted("the server stopped during the replay")
        if speed > 0:
            delay = t0 + done / speed - time.monotonic()
            if delay > 0 and stop.wait(delay):
                raise ReplayInterrupted("the server stopped during the replay")

    try:
        bot, run_id = run_paper(settings, market, strategy, bundle=bundle, ledger=Ledger(settings.ledger),
                                control=control, progress=pace)
        log.info("replay_finished", run_id=run_id, trades=len(bot.exchange.result().trades))
    except ReplayInterrupted:
        control.update_status(running=False)
        log.info("replay_stopped")
    except Exception as exc:  # shown in /status, on the WebSocket / dashboard; the API keeps serving
        message = f"replay failed: {type(exc).__name__}: {exc}".splitlines()[0]
        st = control.status()
        control.update_status(running=False, errors=int(st.get("errors") or 0) + 1, last_error=message)
        control.events.publish("error", message=message)
        log.error("replay_failed", error=message, exc_info=exc)
