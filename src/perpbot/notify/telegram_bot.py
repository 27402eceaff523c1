"""Telegram command bot: operators query and steer a running bot from allowed chats (long polling).

Commands: /start and /menu (inline keyboard), /status, /balance, /positions, /trades [N],
/profit, /daily [days], /performance, /signal SYMBOL, /timeframes SYMBOL (buttons per
timeframe edit the message in place), /pause, /resume, /forceexit (asks to confirm), /help.
Only chats in ``settings.telegram_chat_ids`` may command it; any other chat gets one refusal.
A chat sending commands faster than ``settings.telegram_cooldown`` seconds gets one "slow down"
reply and the extra commands are ignored. Replies longer than 4096 characters are split.
Answers come from :class:`perpbot.bot.context.BotContext`; ledger and indicator work runs in
worker threads so the bot stays responsive. Built on python-telegram-bot's ``Application``
(``base_url`` = ``settings.telegram_base_url``), so a local Bot API server works the same.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import (Application, ApplicationHandlerStop, CallbackQueryHandler, CommandHandler,
                          ContextTypes, MessageHandler, TypeHandler, filters)

from perpbot.logs import get_logger
from perpbot.notify import replies as R
from perpbot.notify.channels import file_base_url, quiet_http_logs, scrub, secret_value
from perpbot.notify.commands import Commands, UsageError
from perpbot.notify.fmt import number, split_message

log = get_logger("perpbot.telegram")


class CommandBot(Commands):
    """The Telegram handlers of one bot (see the module docstring); bodies in :class:`Commands`."""

    def __init__(self, settings: Any, ctx: Any) -> None:
        super().__init__(settings, ctx)
        self.allowed = {int(c) for c in settings.telegram_chat_ids}
        self.cooldown = float(settings.telegram_cooldown)
        self._last: dict[int, float] = {}
        self._warned: dict[int, bool] = {}

    # ------------------------------------------------------------------ gate: auth + cooldown
    async def gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            raise ApplicationHandlerStop
        cq, msg = update.callback_query, update.message
        if chat.id not in self.allowed:
            log.warning("telegram_unauthorised", chat_id=chat.id)
            if cq is not None:
                await cq.answer(self.t("unauthorised"), show_alert=True)
            elif msg is not None:
                await msg.reply_text(self.t("unauthorised"))
            raise ApplicationHandlerStop
        is_command = cq is not None or (msg is not None and (msg.text or "").startswith("/"))
        if not is_command or self.cooldown <= 0:
            return
        now, last = time.monotonic(), self._last.get(chat.id)
        if last is not None and now - last < self.cooldown:
            sec = number(self.cooldown, 1, self.lang)
            if cq is not None:
                await cq.answer(self.t("slow_down", sec=sec))
            elif not self._warned.get(chat.id):
                await msg.reply_text(self.t("slow_down", sec=sec))
            self._warned[chat.id] = True
            raise ApplicationHandlerStop
        self._last[chat.id], self._warned[chat.id] = now, False

    # ------------------------------------------------------------------ replies
    async def send(self, bot: Any, chat_id: int, text: str, markup: Any = None) -> None:
        chunks = split_message(text)
        for i, chunk in enumerate(chunks):
            await bot.send_message(chat_id=chat_id, text=chunk, reply_markup=markup if i == len(chunks) - 1 else None)

    async def answer(self, name: str, args: list[str], chat_id: int) -> tuple[str, Any]:
        """(text, reply_markup) of one command; usage problems and failures become a one-line text."""
        log.info("telegram_command", chat_id=chat_id, command=name, args=" ".join(args)[:100])
        try:
            return await asyncio.to_thread(self.build, name, args, chat_id)
        except UsageError as exc:
            return str(exc), None
        except Exception as exc:  # noqa: BLE001 - the operator gets a one-line error, the log the detail
            log.error("telegram_command_failed", command=name, error=repr(exc))
            return self.t("error", msg=str(exc).splitlines()[0] if str(exc) else type(exc).__name__), None

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        name = update.message.text.split()[0][1:].split("@")[0].lower()
        text, markup = await self.answer(name, list(context.args or []), update.effective_chat.id)
        await self.send(context.bot, update.effective_chat.id, text, markup)

    async def on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        cmd = update.message.text.split()[0]
        await update.message.reply_text(self.t("unknown_cmd", cmd=cmd))

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        cq = update.callback_query
        chat_id = update.effective_chat.id
        kind, _, value = (cq.data or "").partition(":")
        if kind == "cmd":
            await cq.answer()
            args = [self.settings.symbol] if value in ("signal", "timeframes") else []  # a button has no argument
            text, markup = await self.answer(value, args, chat_id)
            await self.send(context.bot, chat_id, text, markup)
        elif kind == "tf":
            await cq.answer()
            text, markup = await asyncio.to_thread(self._timeframes, self.settings.symbol, value)
            await cq.edit_message_text(text, reply_markup=markup)
        elif kind == "fx":
            if value == "yes":
                self.ctx.control.request_force_exit(by=f"telegram:{chat_id}")
                log.info("telegram_force_exit", chat_id=chat_id)
                text = self.t("fx_done")
            else:
                text = self.t("fx_cancel")
            await cq.answer()
            await cq.edit_message_text(text)
        else:
            await cq.answer()

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        token = secret_value(self.settings.telegram_token)
        log.error("telegram_handler_error", error=scrub(repr(context.error), token))

# ---------------------------------------------------------------------- application
def build_application(settings: Any, ctx: Any) -> Application:
    """A python-telegram-bot ``Application`` with the command bot's handlers, pointed at
    ``settings.telegram_base_url``.

    Raises:
        ValueError: no ``telegram_token`` (PERPBOT_TELEGRAM_TOKEN) or no ``telegram_chat_ids``.
    """
    token = secret_value(getattr(settings, "telegram_token", None))
    if not token:
        raise ValueError("telegram bot: telegram_token is not set (environment PERPBOT_TELEGRAM_TOKEN)")
    if not settings.telegram_chat_ids:
        raise ValueError("telegram bot: telegram_chat_ids is empty (nobody could command the bot)")
    quiet_http_logs()
    cb = CommandBot(settings, ctx)
    lang = cb.lang

    async def post_init(app: Application) -> None:
        cmds = [BotCommand(c[0], (c[4] if lang == "id" else c[3])[:256]) for c in R.COMMANDS]
        try:
            await app.bot.set_my_commands([BotCommand("menu", "menu"), *cmds])
        except Exception as exc:  # noqa: BLE001 - the command list is a nicety
            log.warning("telegram_set_commands_failed", error=scrub(repr(exc), token))

    app = (Application.builder().token(token).base_url(settings.telegram_base_url)
           .base_file_url(file_base_url(settings.telegram_base_url)).post_init(post_init).build())
    app.bot_data["perpbot"] = cb
    app.add_handler(TypeHandler(Update, cb.gate), group=-1)
    names = ["start", "menu", "help"] + [c[0] for c in R.COMMANDS if c[0] != "help"]
    app.add_handler(CommandHandler(names, cb.on_command))
    app.add_handler(CallbackQueryHandler(cb.on_button))
    app.add_handler(MessageHandler(filters.COMMAND, cb.on_unknown))
    app.add_error_handler(cb.on_error)
    return app


class BotRunner:
    """Runs an ``Application`` with long polling in a background thread (its own asyncio loop)."""

    def __init__(self, app: Application, poll_timeout: float = 10.0) -> None:
        self.app, self.poll_timeout = app, poll_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="telegram-bot", daemon=True)

    def start(self, timeout: float = 15.0) -> "BotRunner":
        """Start polling; raises what start-up raised (e.g. telegram.error.InvalidToken)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"telegram bot did not start within {timeout} s")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error
        return self

    def _run(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            app = self.app
            try:
                await app.initialize()
                if app.post_init is not None:  # run_polling() would call it; we start by hand
                    await app.post_init(app)
                await app.start()
                await app.updater.start_polling(timeout=self.poll_timeout, poll_interval=0.0,
                                                allowed_updates=["message", "callback_query"])
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                self._error = exc
                self._ready.set()
                try:
                    await app.shutdown()
                except Exception:  # noqa: BLE001 - already failing
                    pass
                return
            self._ready.set()
            await self._stop.wait()
            await app.updater.stop()
            await app.stop()
            await app.shutdown()
            if app.post_shutdown is not None:  # run_polling() would call it; we stop by hand
                await app.post_shutdown(app)

        asyncio.run(main())

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self._error is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and shut the application down (idempotent)."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout)


def telegram_problem(exc: BaseException, base_url: str, token_setting: str, who: str) -> str | None:
    """The one line for a Telegram Bot API that failed ``who``'s start-up (a
    ``telegram.error.TelegramError`` or the start-up timeout; ``token_setting`` names where the token
    comes from), None for any other error. Only the first line of the reason, at most 200 characters
    (a proxy's error page is not echoed)."""
    from telegram.error import InvalidToken, TelegramError

    if not isinstance(exc, (TelegramError, TimeoutError)):
        return None
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    if isinstance(exc, InvalidToken):
        return f"{who}: the Telegram Bot API at {base_url} refused the bot token ({token_setting}): {reason}"
    return f"{who}: cannot reach the Telegram Bot API at {base_url} (telegram_base_url): {reason}"


def run_bot_in_thread(settings: Any, ctx: Any, *, poll_timeout: float = 10.0, start_timeout: float = 15.0) -> BotRunner:
    """Build the application and start polling in a background thread; stop it with ``runner.stop()``."""
    return BotRunner(build_application(settings, ctx), poll_timeout).start(start_timeout)
