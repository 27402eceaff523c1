"""The Telegram signal bot: real-time market signals for any USDT-M perpetual of the signal venue.

Commands (English or Indonesian, ``language`` setting, per chat with ``/lang en|id``):
``/signal SYMBOL``, ``/timeframes SYMBOL`` (inline buttons per timeframe edit the message in
place: callback data ``stf:<tf>:<COIN>``), ``/scalp SYMBOL``, ``/lang``, ``/help`` (``/start``).
The answers come from a :class:`~perpbot.intel.desk.SignalDesk` (fresh venue candles and
market context; a symbol's answer is reused for ``signal_cooldown`` seconds and says so);
missing sources are named in the answer. Messages are Telegram HTML capped at
``signal_max_message_chars`` (:func:`perpbot.notify.safe_cut.safe_cut`).

Only chats in ``signal_chat_ids`` (empty: ``telegram_chat_ids``) are answered; any other chat
gets one refusal. Built on python-telegram-bot's ``Application`` like the command bot
(:mod:`perpbot.notify.telegram_bot`, whose :class:`~perpbot.notify.telegram_bot.BotRunner` runs
it), with concurrent updates so one slow analysis does not hold the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import (Application, ApplicationHandlerStop, CallbackQueryHandler, CommandHandler, ContextTypes,
                          MessageHandler, TypeHandler, filters)

from perpbot.intel.analysis import TIMEFRAMES
from perpbot.intel.desk import SignalDesk, UnknownSymbol
from perpbot.logs import get_logger
from perpbot.notify import signal_replies as R
from perpbot.notify.channels import file_base_url, quiet_http_logs, scrub, secret_value
from perpbot.notify.signal_texts import COMMANDS

__all__ = ["SignalBot", "build_signal_application"]

log = get_logger("perpbot.signal_bot")
_SYMBOL_COMMANDS = ("signal", "timeframes", "scalp")


class SignalBot:
    """Handlers of the signal bot (module docstring)."""

    def __init__(self, settings: Any, desk: SignalDesk) -> None:
        self.settings, self.desk = settings, desk
        self.allowed = {int(c) for c in (settings.signal_chat_ids or settings.telegram_chat_ids)}
        self.default_lang = settings.language if settings.language in ("en", "id") else "en"
        self.langs: dict[int, str] = {}
        self.limit = int(settings.signal_max_message_chars)
        self.show_profile = bool(settings.signal_scalp_volume_profile)

    def lang(self, chat_id: int) -> str:
        return self.langs.get(chat_id, self.default_lang)

    # ------------------------------------------------------------------ gate
    async def gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            raise ApplicationHandlerStop
        if chat.id not in self.allowed:
            log.warning("signal_bot_unauthorised", chat_id=chat.id)
            text = R.tr(self.default_lang, "unauthorised")
            if update.callback_query is not None:
                await update.callback_query.answer(text, show_alert=True)
            elif update.message is not None:
                await update.message.reply_text(text)
            raise ApplicationHandlerStop

    # ------------------------------------------------------------------ answers
    def _tf_markup(self, coin: str, which: str, lang: str) -> InlineKeyboardMarkup:
        row = [InlineKeyboardButton(("• " if tf == which else "") + tf, callback_data=f"stf:{tf}:{coin}")
               for tf in TIMEFRAMES]
        rows = [row]
        if which != "all":
            rows.append([InlineKeyboardButton(R.tr(lang, "tf_all"), callback_data=f"stf:all:{coin}")])
        return InlineKeyboardMarkup(rows)

    async def _report(self, kind: str, symbol: str, lang: str):
        """(report, age, left) or a one-line text for an unreadable / unlisted symbol."""
        try:
            rep, age = await self.desk.report(kind, symbol)
        except UnknownSymbol as exc:
            return R.tr(lang, "unknown_symbol", sym=exc.symbol, venue=exc.venue)
        except ValueError:
            return R.tr(lang, "bad_symbol", sym=symbol[:40])
        return rep, age, self.desk.cooldown_left(kind, rep.symbol)

    async def answer(self, name: str, args: list[str], chat_id: int) -> tuple[str, Any]:
        """(HTML text, reply markup or None) of one command; failures become a one-line text."""
        lang = self.lang(chat_id)
        log.info("signal_bot_command", chat_id=chat_id, command=name, args=" ".join(args)[:60])
        if name in ("start", "help"):
            return R.help_text(lang, self.desk.venue_name), None
        if name == "lang":
            if not args or args[0].lower() not in ("en", "id"):
                return R.tr(lang, "lang_usage"), None
            self.langs[chat_id] = args[0].lower()
            return R.tr(self.langs[chat_id], "lang_set"), None
        if name not in _SYMBOL_COMMANDS:
            return R.tr(lang, "unknown_cmd", cmd=f"/{name}"), None
        if not args:
            return R.tr(lang, "usage", cmd=name), None
        try:
            got = await self._report(name, args[0], lang)
            if isinstance(got, str):
                return got, None
            rep, age, left = got
            if name == "signal":
                return R.signal_text(rep, lang, self.limit, age, left), None
            if name == "scalp":
                return R.scalp_text(rep, lang, self.limit, show_profile=self.show_profile, age=age, left=left), None
            return R.timeframes_text(rep, lang, self.limit, age, left), self._tf_markup(rep.coin, "all", lang)
        except Exception as exc:  # noqa: BLE001 - the user gets one line, the log the detail
            log.error("signal_bot_command_failed", command=name, error=repr(exc)[:300])
            return R.tr(lang, "error", msg=type(exc).__name__), None

    async def send(self, bot: Any, chat_id: int, text: str, markup: Any = None) -> None:
        await bot.send_message(chat_id=chat_id, text=text, parse_mode=ParseMode.HTML, reply_markup=markup)

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        name = update.message.text.split()[0][1:].split("@")[0].lower()
        text, markup = await self.answer(name, list(context.args or []), update.effective_chat.id)
        await self.send(context.bot, update.effective_chat.id, text, markup)

    async def on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        cmd = update.message.text.split()[0][:40]
        await update.message.reply_text(R.tr(self.lang(update.effective_chat.id), "unknown_cmd", cmd=cmd))

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        cq = update.callback_query
        lang = self.lang(update.effective_chat.id)
        kind, tf, coin = ((cq.data or "").split(":") + ["", "", ""])[:3]
        await cq.answer()
        if kind != "stf" or (tf != "all" and tf not in TIMEFRAMES):
            return
        try:
            got = await self._report("timeframes", coin, lang)
            if isinstance(got, str):
                text, markup = got, None
            else:
                rep, age, left = got
                text = R.timeframes_text(rep, lang, self.limit, age, left) if tf == "all" else \
                    R.timeframe_detail(rep, tf, lang, self.limit)
                markup = self._tf_markup(rep.coin, tf, lang)
        except Exception as exc:  # noqa: BLE001
            log.error("signal_bot_button_failed", data=cq.data, error=repr(exc)[:300])
            text, markup = R.tr(lang, "error", msg=type(exc).__name__), None
        await cq.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("signal_bot_handler_error", error=scrub(repr(context.error), secret_value(self._token())))

    def _token(self) -> Any:
        return self.settings.signal_bot_token or self.settings.telegram_token


def build_signal_application(settings: Any, desk: SignalDesk, *,
                             on_start: Callable[[], Awaitable[None]] | None = None,
                             on_stop: Callable[[], Awaitable[None]] | None = None) -> Application:
    """A python-telegram-bot ``Application`` of the signal bot at ``settings.telegram_base_url``.

    ``on_start`` / ``on_stop`` run inside the bot's event loop after start-up / after shut-down
    (start the micro refresher, close the market-context clients and the ccxt client).

    Raises:
        ValueError: no token (PERPBOT_SIGNAL_BOT_TOKEN or PERPBOT_TELEGRAM_TOKEN) or no chat ids
        (signal_chat_ids or telegram_chat_ids).
    """
    token = secret_value(settings.signal_bot_token or settings.telegram_token)
    if not token:
        raise ValueError("signal bot: no Telegram token (environment PERPBOT_SIGNAL_BOT_TOKEN or "
                         "PERPBOT_TELEGRAM_TOKEN)")
    if not (settings.signal_chat_ids or settings.telegram_chat_ids):
        raise ValueError("signal bot: signal_chat_ids and telegram_chat_ids are empty (nobody could use it)")
    quiet_http_logs()
    sb = SignalBot(settings, desk)

    async def post_init(app: Application) -> None:
        lang = sb.default_lang
        cmds = [BotCommand(c, (d_id if lang == "id" else d_en)[:256]) for c, d_en, d_id in COMMANDS]
        try:
            await app.bot.set_my_commands(cmds)
        except Exception as exc:  # noqa: BLE001 - the command list is a nicety
            log.warning("signal_bot_set_commands_failed", error=scrub(repr(exc), token))
        if on_start is not None:
            await on_start()

    async def post_shutdown(app: Application) -> None:
        if on_stop is not None:
            await on_stop()

    app = (Application.builder().token(token).base_url(settings.telegram_base_url)
           .base_file_url(file_base_url(settings.telegram_base_url)).concurrent_updates(True)
           .post_init(post_init).post_shutdown(post_shutdown).build())
    app.bot_data["signal_bot"] = sb
    app.add_handler(TypeHandler(Update, sb.gate), group=-1)
    app.add_handler(CommandHandler(["start", "help", "lang", *_SYMBOL_COMMANDS], sb.on_command))
    app.add_handler(CallbackQueryHandler(sb.on_button))
    app.add_handler(MessageHandler(filters.COMMAND, sb.on_unknown))
    app.add_error_handler(sb.on_error)
    return app
