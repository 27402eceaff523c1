"""Operator notifications (Telegram, e-mail) and the Telegram command bot.

- :class:`Notifier`: bot events -> messages in the background (never delays the loop).
- :class:`TelegramChannel`, :class:`EmailChannel`: where messages go.
- :func:`build_application`, :func:`run_bot_in_thread`: the Telegram command bot
  (imported lazily: it needs python-telegram-bot).
"""

from __future__ import annotations

from perpbot.notify.channels import Channel, EmailChannel, TelegramChannel, default_channels
from perpbot.notify.messages import NOTIFY_KINDS, Note, render_event
from perpbot.notify.notifier import Notifier

__all__ = ["Channel", "EmailChannel", "TelegramChannel", "default_channels", "NOTIFY_KINDS", "Note",
           "render_event", "Notifier", "build_application", "run_bot_in_thread", "BotRunner"]


def __getattr__(name: str):
    if name in ("build_application", "run_bot_in_thread", "BotRunner"):
        from perpbot.notify import telegram_bot

        return getattr(telegram_bot, name)
    raise AttributeError(f"module 'perpbot.notify' has no attribute {name!r}")
