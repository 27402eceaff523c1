"""Keeping secrets out of everything a user or an attacker can read.

* :func:`mask_url` — a database or web URL with its password replaced by ``***`` (SQLAlchemy's
  ``URL.render_as_string(hide_password=True)`` for database URLs; ``password=`` query
  parameters masked too). What :meth:`perpbot.config.Settings.public_dict` and every banner
  show instead of ``ledger_url``.
* :func:`redact_text` — the last line of defence of every error line the command line prints:
  the values of the secret variables (:data:`SECRET_ENV`: ``PERPBOT_API_KEY`` ...), every value passed to
  :func:`remember` (the ledger password once settings are loaded) and any ``user:password@``
  or ``password=...`` inside a URL are replaced by ``***``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = ["MASK", "SECRET_ENV", "mask_url", "redact_text", "remember"]

MASK = "***"

#: The environment variables that hold secrets (one per secret setting).
SECRET_ENV = ("PERPBOT_API_KEY", "PERPBOT_API_SECRET", "PERPBOT_API_PASSPHRASE", "PERPBOT_TELEGRAM_TOKEN",
              "PERPBOT_SMTP_PASSWORD", "PERPBOT_API_TOKEN", "PERPBOT_COINGLASS_API_KEY", "PERPBOT_SIGNAL_BOT_TOKEN",
              # the multi-user platform's secrets (perpbot.config_values.PlatformSettings)
              "PERPBOT_MASTER_KEY", "PERPBOT_JWT_SECRET", "PERPBOT_CHAIN_RPC_URL", "PERPBOT_CHAIN_PRIVATE_KEY")

#: Values shorter than this are not searched for in text (a 1-character "secret" would
#: garble every message; such tokens are refused elsewhere anyway).
_MIN_SECRET_LEN = 4

# ://user:password@  (whatever precedes "://"; the password holds no unescaped '@', '/' or space)
_USERINFO = re.compile(r"(://[^\s:/@]*:)([^\s/@]+)(@)")
# password=...  inside a query string or a libpq key=value string
_PASSWORD_PARAM = re.compile(r"((?:^|[?&;\s])[A-Za-z_]*password=)([^&;\s]+)", re.IGNORECASE)

_remembered: set[str] = set()


def remember(value: str | None) -> None:
    """Add ``value`` (a secret loaded from somewhere else than the environment, e.g. the
    ledger password of a config file) to what :func:`redact_text` removes, for this process."""
    if value and len(value) >= _MIN_SECRET_LEN:
        _remembered.add(value)


def mask_url(url: str | None) -> str | None:
    """``url`` with any password replaced by ``***``; None stays None.

    A string SQLAlchemy cannot parse is masked by pattern (``scheme://user:***@``) instead
    of being shown as given. Never raises.
    """
    if url is None:
        return None
    text = str(url)
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(text)
        secret_query = {k: MASK for k in parsed.query if "password" in k.lower()}
        if secret_query:
            parsed = parsed.update_query_dict(secret_query)
        shown = parsed.render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: mask by pattern
        shown = text
    return _PASSWORD_PARAM.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}\g<3>", shown))


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    upper = {k.upper(): v for k, v in environ.items()}
    values = {upper.get(name, "") for name in SECRET_ENV} | _remembered
    ledger = upper.get("PERPBOT_LEDGER_URL")
    if ledger:
        try:
            from sqlalchemy.engine import make_url

            values.add(make_url(ledger).password or "")
        except Exception:
            pass
    # longest first, so a secret containing another is removed whole
    return sorted((v for v in values if v and len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def redact_text(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every known secret value and every password inside a URL replaced by ``***``.

    ``environ`` defaults to ``os.environ`` (the secrets are read from there, as the settings do).
    """
    out = str(text)
    for value in _secret_values(os.environ if environ is None else environ):
        out = out.replace(value, MASK)
    return _PASSWORD_PARAM.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}\g<3>", out))
