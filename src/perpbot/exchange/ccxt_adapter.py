"""The ccxt client factory for live trading: demo by default, real money only when confirmed twice.

:func:`make_exchange` builds the asyncio ccxt.pro client (REST + websockets) of
``settings.exchange`` with the API keys from the environment secrets, swap markets and, for
Bitget, ``uta: False`` and swap-only market loading. It is in **demo mode** unless the caller
asks for real money: ``set_sandbox_mode(True)``, which on Bitget sends the ``paptrading: 1``
header with the normal symbols and ``USDT-FUTURES`` (Bitget demo trading; demo API keys).

Real money needs two things (see :func:`check_real_money`):

1. the explicit flag (``perpbot run --mode live --real-money`` -> ``real_money=True``), and
2. the environment variable ``PERPBOT_CONFIRM_REAL_MONEY=yes``.

Either one alone raises :class:`RealMoneyNotConfirmed` before a client exists.

Every client records when each HTTP request leaves (``ex.request_sent_at``: last path
segment -> ``time.perf_counter()`` taken just before the request is handed to aiohttp), via a
subclass of the ccxt class that overrides ``fetch`` and calls the original. The live loop
uses it for its candle -> order-request latency, which so excludes the network.

:func:`describe_error` turns any ccxt exception into one clear line (venue, code, message,
error class); :func:`error_code` extracts the venue's error code (e.g. "40762").
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from perpbot.exchange import venue_params
from perpbot.exchange.clients import swap_options

REAL_MONEY_ENV = "PERPBOT_CONFIRM_REAL_MONEY"

_TIMED_CLASSES: dict[type, type] = {}


class ExchangeSetupError(RuntimeError):
    """The exchange client cannot be built or started (one line for the user)."""


class RealMoneyNotConfirmed(ExchangeSetupError):
    """Real-money trading was requested without both the flag and the confirmation variable."""


def check_real_money(real_money: bool, environ: dict | None = None) -> None:
    """Allow real money only with the flag AND ``PERPBOT_CONFIRM_REAL_MONEY=yes``.

    The variable alone changes nothing (without the flag the client stays in demo mode).

    Raises:
        RealMoneyNotConfirmed: the flag is given without ``PERPBOT_CONFIRM_REAL_MONEY=yes``.
    """
    env = os.environ if environ is None else environ
    confirmed = env.get(REAL_MONEY_ENV, "").strip().lower() == "yes"
    if real_money and not confirmed:
        raise RealMoneyNotConfirmed(
            f"--real-money needs the confirmation {REAL_MONEY_ENV}=yes in the environment; "
            "nothing was sent (run without --real-money to use the demo account)")


def _timed(cls: type) -> type:
    """A subclass of the ccxt class ``cls`` that stamps ``request_sent_at`` in ``fetch``."""
    if cls in _TIMED_CLASSES:
        return _TIMED_CLASSES[cls]

    async def fetch(self, url, method="GET", headers=None, body=None):
        path = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        self.request_sent_at[path] = time.perf_counter()
        self.requests_sent += 1
        return await cls.fetch(self, url, method, headers, body)

    timed = type(cls.__name__, (cls,), {"fetch": fetch, "__doc__": cls.__doc__,
                                        "__module__": __name__})
    _TIMED_CLASSES[cls] = timed
    return timed


def make_exchange(settings, *, real_money: bool = False, environ: dict | None = None,
                  config: dict | None = None):
    """The asyncio ccxt.pro client of ``settings.exchange`` for live trading (demo unless real money).

    Args:
        settings: :class:`perpbot.config.Settings` (exchange id; secrets api_key, api_secret,
            api_passphrase from ``PERPBOT_API_KEY`` ...; missing keys are reported by
            :meth:`perpbot.exchange.executor.Executor.startup`, not here).
        real_money: trade the real account; also needs ``PERPBOT_CONFIRM_REAL_MONEY=yes``.
        environ: environment to read the confirmation from (default ``os.environ``; tests).
        config: extra ccxt constructor options (e.g. ``{"enableRateLimit": False}``).
    Returns:
        a ccxt.pro exchange instance (the caller closes it: ``await ex.close()``); its
        ``request_sent_at`` dict maps a request's last path segment to ``time.perf_counter()``.
    Raises:
        ExchangeSetupError: unknown exchange id, or a venue without a demo mode when demo is wanted.
        RealMoneyNotConfirmed: real money without the confirmation (see module docstring).
    """
    import ccxt.async_support as ccxt_async
    import ccxt.pro as ccxt_pro

    check_real_money(real_money, environ)
    exchange_id = settings.exchange
    base = getattr(ccxt_pro, exchange_id, None) or getattr(ccxt_async, exchange_id, None)
    if base is None or exchange_id not in ccxt_async.exchanges:
        import difflib

        close = difflib.get_close_matches(exchange_id, ccxt_async.exchanges, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ExchangeSetupError(f"unknown exchange {exchange_id!r}: not a ccxt exchange id{hint}")
    cfg: dict[str, Any] = {"enableRateLimit": True, "options": swap_options(exchange_id)}

    def secret(name: str) -> str | None:
        value = getattr(settings, name, None)
        return value.get_secret_value() if value is not None else None

    for key, name in (("apiKey", "api_key"), ("secret", "api_secret"), ("password", "api_passphrase")):
        if secret(name):
            cfg[key] = secret(name)
    cfg.update(config or {})
    ex = _timed(base)(cfg)
    ex.request_sent_at = {}
    ex.requests_sent = 0
    ex.perpbot_real_money = bool(real_money)
    if not real_money:
        try:
            venue_params.enable_demo(ex)  # the venue's demo trading (ccxt sandbox mode, or its own switch)
        except Exception as exc:  # ccxt raises NotSupported for venues without a sandbox
            raise ExchangeSetupError(f"{exchange_id} has no demo/sandbox mode in ccxt ({type(exc).__name__}); "
                                     "live trading there needs --real-money") from None
    return ex


def banner(settings, real_money: bool, *, strategy: str = "", run_id: int | None = None):
    """The loud startup banner (a Rich Panel): DEMO (green) or REAL MONEY (red), venue, symbol."""
    from rich.panel import Panel
    from rich.text import Text

    if real_money:
        title, style = "REAL MONEY", "bold white on red"
        line = "Orders go to your REAL account. Losses are real."
    else:
        title, style = "DEMO", "bold black on green"
        line = venue_params.demo_line(settings.exchange)
    body = Text()
    body.append(f" {title} ", style=style)
    body.append(f"  {line}\n")
    body.append(f"{settings.exchange} {settings.symbol} {settings.timeframe}  leverage {settings.leverage:g}x isolated  "
                f"risk {settings.risk_per_trade:g}%/trade  SL {settings.stop_loss:g}%  TP {settings.take_profit:g}%")
    if strategy:
        body.append(f"  strategy {strategy}")
    if warning := venue_params.real_money_warning(settings.exchange):  # a venue without demo/testnet (MEXC)
        body.append(f"\n {warning} ", style="bold white on red")
    if run_id is not None:
        body.append(f"  run {run_id}")
    return Panel(body, title=f"perpbot live: {title}", border_style="red" if real_money else "green")


# ---------------------------------------------------------------------------------------- errors
_CODE_RE = re.compile(r'"code"\s*:\s*"?(-?\w+)"?')
_MSG_RE = re.compile(r'"msg"\s*:\s*"([^"]*)"')
_SCODE_RE = re.compile(r'"sCode"\s*:\s*"(\w+)"')
_HTTP_RE = re.compile(r"^(\w+) (GET|POST|PUT|DELETE) (\S+) (\d{3}) ?(.*)$")


def error_code(exc: BaseException) -> str | None:
    """The venue's error code inside a ccxt exception message (Bitget: '{"code":"40762",...}'; OKX: the
    order's own ``sCode`` inside its '{"code":"1",...,"data":[{"sCode":"51016",...}]}')."""
    text = str(exc)
    order = next((c for c in _SCODE_RE.findall(text) if c != "0"), None)
    if order is not None:
        return order
    m = _CODE_RE.search(text)
    return m.group(1) if m else None


def describe_error(exc: BaseException, what: str = "") -> str:
    """One line for any exchange error: ``[what: ]ErrorClass venue code message``.

    The ccxt message (``'bitget {"code":"40762","msg":"...",...}'``) is reduced to its code
    and message; HTML bodies of gateways (5xx) to their status; secrets never appear (ccxt
    messages hold none: keys travel in headers).
    """
    text = " ".join(str(exc).split())
    prefix = f"{what}: " if what else ""
    http = _HTTP_RE.match(text)
    if http and not _MSG_RE.search(text):  # a gateway's answer (5xx / HTML): status and request only
        venue, method, url, status, reason = http.groups()
        path = re.sub(r"^\w+://[^/]+", "", url).split("?", 1)[0]
        reason = reason.split("<", 1)[0].strip() or " ".join(re.sub(r"<[^>]+>", " ", reason).split()[:4])
        return f"{prefix}{type(exc).__name__}: {venue} HTTP {status} {reason} ({method} {path})"
    code, msg = error_code(exc), None
    m = _MSG_RE.search(text)
    if m:
        msg = m.group(1)
    else:
        try:
            body = json.loads(text.split(" ", 1)[1]) if " " in text else None
            msg = body.get("msg") if isinstance(body, dict) else None
        except (ValueError, AttributeError):
            msg = None
    if msg is None:
        msg = re.sub(r"<[^>]+>", " ", text)
        msg = " ".join(msg.split())[:200]
    detail = f"{code} {msg}" if code and code not in msg else msg
    return f"{prefix}{type(exc).__name__}: {detail}"
