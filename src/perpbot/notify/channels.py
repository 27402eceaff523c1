"""Delivery channels for notifications: Telegram (Bot API via python-telegram-bot) and e-mail (SMTP).

A channel turns a :class:`perpbot.notify.messages.Note` into delivery units (one per chat and
<= 4096-char chunk for Telegram, one e-mail for all recipients) and sends one unit per call,
raising on failure; :class:`perpbot.notify.notifier.Notifier` runs the calls in its background
loop and retries transient failures. Channels never log or raise with the bot token in the
message (see :func:`scrub`).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any, Iterable

from perpbot.notify.fmt import split_message
from perpbot.notify.messages import NOTIFY_KINDS, Note


def secret_value(value: Any) -> str | None:
    """The plain text of a SecretStr (or str); None stays None."""
    if value is None:
        return None
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def quiet_http_logs() -> None:
    """httpx logs every request URL at INFO, and Bot API URLs contain the token: keep it at WARNING."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def file_base_url(base_url: str) -> str:
    """Bot API file URL for a base URL: ``.../bot`` -> ``.../file/bot``."""
    if base_url.endswith("/bot"):
        return base_url[: -len("/bot")] + "/file/bot"
    return base_url.rstrip("/") + "/file/bot"


class Channel:
    """Base class: ``name``, the event ``kinds`` it carries, ``units(note)`` and ``send_unit(unit)``."""

    name = "channel"

    def __init__(self, kinds: Iterable[str] | None = None) -> None:
        self.kinds = frozenset(kinds if kinds is not None else NOTIFY_KINDS)
        unknown = self.kinds - set(NOTIFY_KINDS)
        if unknown:
            raise ValueError(f"{self.name} channel: unknown event kinds {sorted(unknown)}; allowed: {NOTIFY_KINDS}")

    def units(self, note: Note) -> list[tuple[Any, Any]]:
        """(target, payload) pairs, each sent (and retried) on its own."""
        raise NotImplementedError

    async def send_unit(self, unit: tuple[Any, Any]) -> None:
        raise NotImplementedError

    def is_permanent(self, exc: BaseException) -> bool:
        """True when retrying cannot help (bad request, refused recipient...)."""
        return False

    def retry_after(self, exc: BaseException) -> float | None:
        """Seconds the server asked us to wait, if it did."""
        return None

    def secrets(self) -> tuple[str | None, ...]:
        return ()

    async def close(self) -> None:
        return None


class TelegramChannel(Channel):
    """Sends notes to every ``settings.telegram_chat_ids`` via ``telegram.Bot(token, base_url=...)``.

    Raises:
        ValueError: no ``telegram_token`` (PERPBOT_TELEGRAM_TOKEN) or no chat ids.
    """

    name = "telegram"

    def __init__(self, settings: Any, *, kinds: Iterable[str] | None = None, timeout: float = 10.0) -> None:
        super().__init__(kinds)
        from telegram import Bot
        from telegram.request import HTTPXRequest

        self._token = secret_value(getattr(settings, "telegram_token", None))
        if not self._token:
            raise ValueError("telegram channel: telegram_token is not set (environment PERPBOT_TELEGRAM_TOKEN)")
        self.chat_ids = [int(c) for c in settings.telegram_chat_ids]
        if not self.chat_ids:
            raise ValueError("telegram channel: telegram_chat_ids is empty (no chat to notify)")
        quiet_http_logs()
        request = HTTPXRequest(connection_pool_size=4, connect_timeout=timeout, read_timeout=timeout,
                               write_timeout=timeout, pool_timeout=timeout)
        self.bot = Bot(self._token, base_url=settings.telegram_base_url,
                       base_file_url=file_base_url(settings.telegram_base_url), request=request)
        self._ready = False

    def units(self, note: Note) -> list[tuple[Any, Any]]:
        chunks = [c for c in split_message(note.text) if c.strip()]
        return [(chat, chunk) for chat in self.chat_ids for chunk in chunks]

    async def send_unit(self, unit: tuple[Any, Any]) -> None:
        if not self._ready:
            await self.bot.initialize()
            self._ready = True
        chat_id, text = unit
        await self.bot.send_message(chat_id=chat_id, text=text)

    def is_permanent(self, exc: BaseException) -> bool:
        from telegram.error import BadRequest, Forbidden, InvalidToken

        return isinstance(exc, (BadRequest, Forbidden, InvalidToken))

    def retry_after(self, exc: BaseException) -> float | None:
        from telegram.error import RetryAfter

        if isinstance(exc, RetryAfter):
            ra = exc.retry_after
            return float(ra.total_seconds() if hasattr(ra, "total_seconds") else ra)
        return None

    def secrets(self) -> tuple[str | None, ...]:
        return (self._token,)

    async def close(self) -> None:
        if self._ready:
            try:
                await self.bot.shutdown()
            finally:
                self._ready = False


class EmailChannel(Channel):
    """Sends each note as one plain-text e-mail to ``settings.email_to`` through ``smtp_host:smtp_port``.

    STARTTLS when ``smtp_starttls``; login when ``smtp_user`` is set (password from
    PERPBOT_SMTP_PASSWORD). The blocking smtplib call runs in a worker thread.

    Raises:
        ValueError: no ``smtp_host`` or no ``email_to``.
    """

    name = "email"

    def __init__(self, settings: Any, *, kinds: Iterable[str] | None = None, timeout: float = 10.0) -> None:
        super().__init__(kinds)
        if not settings.smtp_host:
            raise ValueError("email channel: smtp_host is not set")
        if not settings.email_to:
            raise ValueError("email channel: email_to is empty (no recipient)")
        self.host, self.port = settings.smtp_host, int(settings.smtp_port)
        self.user, self.starttls = settings.smtp_user, bool(settings.smtp_starttls)
        self._password = secret_value(getattr(settings, "smtp_password", None))
        self.sender = settings.email_from or settings.smtp_user or "perpbot@localhost"
        self.recipients = list(settings.email_to)
        self.timeout = timeout

    def units(self, note: Note) -> list[tuple[Any, Any]]:
        return [(",".join(self.recipients), note)]

    def build(self, note: Note) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[perpbot] {note.subject}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(note.text)
        return msg

    def _send_sync(self, note: Note) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self._password or "")
            smtp.send_message(self.build(note))

    async def send_unit(self, unit: tuple[Any, Any]) -> None:
        await asyncio.to_thread(self._send_sync, unit[1])

    def is_permanent(self, exc: BaseException) -> bool:
        return isinstance(exc, (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused,
                                smtplib.SMTPSenderRefused, smtplib.SMTPNotSupportedError))

    def secrets(self) -> tuple[str | None, ...]:
        return (self._password,)


def default_channels(settings: Any) -> list[Channel]:
    """The channels the settings configure: Telegram (token + chat ids), e-mail (host + recipients)."""
    out: list[Channel] = []
    if secret_value(getattr(settings, "telegram_token", None)) and settings.telegram_chat_ids:
        out.append(TelegramChannel(settings))
    if settings.smtp_host and settings.email_to:
        out.append(EmailChannel(settings))
    return out
