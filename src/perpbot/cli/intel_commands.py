"""``perpbot signal-bot``, ``perpbot collect`` and ``perpbot pairs``: the market-intelligence commands.

Registered on the Typer app by :func:`register` (one line in :mod:`perpbot.cli.main`). Each
reads the settings (``signal_*``, ``collect_*``, ``pairs_*``, ``intel_*``), talks to the signal
venue (``signal_exchange``, MEXC by default; ``--exchange`` / ``--api-url`` to point elsewhere,
e.g. the local Bitget simulator) and turns every failure into one ``error:`` line (exit 2 for
usage / configuration, 1 for data / runtime; :func:`perpbot.cli.common.handled`).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Any, Optional

import typer

from perpbot.cli import common as cli
from perpbot.cli.common import ConfigOpt

__all__ = ["public_exchange", "register"]

ExchangeOpt = typer.Option(None, "--exchange", help="ccxt id of the venue (default: signal_exchange, mexc)")
ApiUrlOpt = typer.Option(None, "--api-url", help="replace the venue's REST base url (a local simulator or proxy)")


def public_exchange(exchange_id: str, api_url: str | None = None, timeout_ms: int = 10_000) -> Any:
    """An asyncio ccxt client of ``exchange_id``'s swap markets for public market data (no
    keys; :func:`perpbot.exchange.clients.make_public_exchange`). The caller closes it.

    Raises:
        UsageError: ``exchange_id`` is not a ccxt exchange.
    """
    from perpbot.exchange.clients import make_public_exchange

    try:
        return make_public_exchange(exchange_id, api_url, timeout_ms)
    except ValueError as exc:
        raise cli.UsageError(str(exc)) from None


def _settings(config: Optional[Path], exchange: Optional[str], log_name: str, **overrides: Any):
    from perpbot.logs import configure_logging

    s = cli.settings_for(config, **({"signal_exchange": exchange} if exchange else {}), **overrides)
    cli._log_file = configure_logging(s.output_dir / "logs" / log_name, s.log_level, max_bytes=s.log_max_bytes,
                                      backup_count=s.log_backup_count)
    return s


# ------------------------------------------------------------------------------ signal-bot --
def signal_bot(config: Optional[Path] = ConfigOpt, exchange: Optional[str] = ExchangeOpt,
               api_url: Optional[str] = ApiUrlOpt) -> None:
    """Run the Telegram signal bot (/signal, /timeframes, /scalp for any USDT-M perpetual) until Ctrl-C."""
    with cli.handled():
        s = _settings(config, exchange, "signal-bot")
        try:
            runner = start_signal_bot(s, api_url=api_url)
        except ValueError as exc:
            raise cli.UsageError(str(exc)) from None
        except Exception as exc:  # the Bot API down, answering garbage or refusing the token: one line, exit 1
            from perpbot.notify.telegram_bot import telegram_problem

            problem = telegram_problem(exc, s.telegram_base_url, "PERPBOT_SIGNAL_BOT_TOKEN, else PERPBOT_TELEGRAM_TOKEN",
                                       "signal bot")
            if problem is None:
                raise
            raise cli.UserError(problem) from None
        cli.console.print(f"signal bot running on {s.signal_exchange} (Ctrl-C stops it); log: "
                          f"{s.output_dir / 'logs' / 'signal-bot'}")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(1.0) and runner.running:
            pass
        runner.stop()


def start_signal_bot(settings: Any, *, api_url: str | None = None, exchange: Any = None, poll_timeout: float = 10.0,
                     now_ms: Any = None):
    """Build the venue client, market context, desk and Telegram application, and start polling
    in a background thread (:class:`perpbot.notify.telegram_bot.BotRunner`); ``runner.stop()``
    stops it and closes every client. ``exchange``: an asyncio ccxt client to use instead of
    building one (the runner closes it); ``now_ms``: the venue's clock (ms UTC) when it is not
    the wall clock (a replaying simulator)."""
    from perpbot.intel.context import MarketContext
    from perpbot.intel.desk import SignalDesk
    from perpbot.notify.signal_bot import build_signal_application
    from perpbot.notify.signal_model import ModelCaller
    from perpbot.notify.telegram_bot import BotRunner

    ex = exchange if exchange is not None else public_exchange(settings.signal_exchange, api_url)
    ctx = MarketContext.from_settings(settings, exchange=ex)
    clock = {} if now_ms is None else {"now_ms": now_ms}
    if ctx.micro is not None and now_ms is not None:
        ctx.micro.now_ms = now_ms
    desk = SignalDesk.from_settings(settings, ctx, model_call=ModelCaller(settings, ctx.venue, **clock), **clock)

    async def on_start() -> None:
        if ctx.micro is not None:
            ctx.micro.start()

    async def on_stop() -> None:
        await ctx.aclose()
        await ex.close()

    app = build_signal_application(settings, desk, on_start=on_start, on_stop=on_stop)
    return BotRunner(app, poll_timeout).start()


def register(app: typer.Typer) -> None:
    """Add ``signal-bot``, ``collect`` and ``pairs`` to the ``perpbot`` Typer app."""
    app.command("signal-bot")(signal_bot)
    from perpbot.cli.intel_data import collect, pairs

    app.command("collect")(collect)
    app.command("pairs")(pairs)


def run_async(coro) -> Any:
    """Run ``coro`` to completion in a fresh event loop (the commands are synchronous)."""
    return asyncio.run(coro)
