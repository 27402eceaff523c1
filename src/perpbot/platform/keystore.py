"""Encrypted store of users' exchange API keys (``cryptography`` Fernet / MultiFernet).

The master key comes only from the environment: ``PERPBOT_MASTER_KEY`` holds one or more
Fernet keys (44-character URL-safe base64, e.g. from ``Fernet.generate_key()``), comma
separated, the first one used to encrypt and all of them tried to decrypt (MultiFernet), so a
rotation can be rolled out without downtime. A row stores only the Fernet token (AES-128-CBC +
HMAC-SHA256, authenticated) of the credentials' JSON; the API never returns it or the
credentials, and nothing here logs them.

Rotation: :func:`rotate_master_key` re-encrypts every row under the new key in one
transaction (checking that each row decrypts first), after which ``PERPBOT_MASTER_KEY`` must
be set to the new key (or ``new,old`` while processes restart).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.orm import Session

from perpbot.platform.db import utcnow
from perpbot.platform.models import ExchangeKey
from perpbot.platform.wallet import write_session

ENV_VAR = "PERPBOT_MASTER_KEY"
CREDENTIAL_FIELDS = ("api_key", "secret", "password")
_NAME = re.compile(r"^[a-z0-9_.-]{1,32}$")
_LABEL = re.compile(r"^[A-Za-z0-9 _.-]{1,64}$")


class KeyStoreError(ValueError):
    """A master key or a stored credential cannot be used; the message is one line, never a secret."""


@dataclass(frozen=True)
class ExchangeKeyInfo:
    """What may be shown about a stored credential: never the key or secret."""

    id: int
    exchange: str
    label: str
    created_at: datetime
    rotated_at: datetime | None


def _fernets(keys: str | list[str]) -> list[Fernet]:
    parts = [k.strip() for k in (keys.split(",") if isinstance(keys, str) else keys) if k and k.strip()]
    if not parts:
        raise KeyStoreError(f"no master key: set {ENV_VAR} to a Fernet key (Fernet.generate_key())")
    try:
        return [Fernet(k.encode("ascii")) for k in parts]
    except (ValueError, UnicodeEncodeError):
        raise KeyStoreError(f"{ENV_VAR} is not a comma-separated list of Fernet keys (32 url-safe base64 bytes)") from None


def master_key_from_env(environ: Mapping[str, str] | None = None) -> MultiFernet:
    """MultiFernet from ``PERPBOT_MASTER_KEY``. Raises :class:`KeyStoreError` when unset or malformed."""
    env = os.environ if environ is None else environ
    return MultiFernet(_fernets(env.get(ENV_VAR, "")))


def _info(row: ExchangeKey) -> ExchangeKeyInfo:
    return ExchangeKeyInfo(row.id, row.exchange, row.label, row.created_at, row.rotated_at)


class KeyStore:
    """Users' exchange credentials, encrypted at rest with ``fernet`` (:func:`master_key_from_env`)."""

    def __init__(self, engine: sa.Engine, fernet: MultiFernet) -> None:
        self.engine = engine
        self._fernet = fernet

    def put(self, user_id: int, exchange: str, credentials: Mapping[str, str], label: str = "default") -> ExchangeKeyInfo:
        """Store (or replace) ``credentials`` ({api_key, secret[, password]}) for ``exchange`` (ccxt id).

        Raises:
            KeyStoreError: unknown fields, an empty ``api_key``/``secret``, a bad exchange id or label.
        """
        if not isinstance(exchange, str) or not _NAME.fullmatch(exchange):
            raise KeyStoreError("exchange must be a ccxt id such as 'bitget'")
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise KeyStoreError("label must be 1-64 letters, digits, spaces, '_', '.', '-'")
        extra = set(credentials) - set(CREDENTIAL_FIELDS)
        if extra:
            raise KeyStoreError(f"unknown credential fields: {', '.join(sorted(extra))} (allowed: "
                                f"{', '.join(CREDENTIAL_FIELDS)})")
        clean = {k: v for k, v in credentials.items() if v}
        if not all(isinstance(v, str) and 0 < len(v) <= 512 for v in clean.values()) or \
                not {"api_key", "secret"} <= set(clean):
            raise KeyStoreError("credentials need a non-empty api_key and secret (strings up to 512 characters)")
        token = self._fernet.encrypt(json.dumps(clean, sort_keys=True).encode()).decode("ascii")
        with write_session(self.engine) as s:
            row = s.execute(sa.select(ExchangeKey).where(ExchangeKey.user_id == user_id,
                                                         ExchangeKey.exchange == exchange,
                                                         ExchangeKey.label == label).with_for_update()).scalar_one_or_none()
            if row is None:
                row = ExchangeKey(user_id=user_id, exchange=exchange, label=label, ciphertext=token)
                s.add(row)
            else:
                row.ciphertext, row.rotated_at = token, utcnow()
            s.flush()
            return _info(row)

    def get(self, user_id: int, exchange: str, label: str = "default") -> dict[str, str]:
        """The decrypted credentials (for the trading code only: never return or log them).

        Raises:
            KeyError: none stored; KeyStoreError: the row does not decrypt with the master key.
        """
        with Session(self.engine) as s:
            row = s.execute(sa.select(ExchangeKey).where(ExchangeKey.user_id == user_id, ExchangeKey.exchange == exchange,
                                                         ExchangeKey.label == label)).scalar_one_or_none()
        if row is None:
            raise KeyError(f"no {exchange} credentials labelled {label!r} for user {user_id}")
        return self._decrypt(row)

    def _decrypt(self, row: ExchangeKey) -> dict[str, str]:
        try:
            return json.loads(self._fernet.decrypt(row.ciphertext.encode("ascii")))
        except InvalidToken:
            raise KeyStoreError(f"exchange key {row.id} does not decrypt with {ENV_VAR} (wrong or rotated key)") from None

    def list(self, user_id: int) -> list[ExchangeKeyInfo]:
        with Session(self.engine) as s:
            rows = s.execute(sa.select(ExchangeKey).where(ExchangeKey.user_id == user_id)
                             .order_by(ExchangeKey.id)).scalars().all()
        return [_info(r) for r in rows]

    def delete(self, user_id: int, key_id: int) -> bool:
        """Delete one of the user's credentials; False when the user has no such row."""
        with write_session(self.engine) as s:
            n = s.execute(sa.delete(ExchangeKey).where(ExchangeKey.id == key_id, ExchangeKey.user_id == user_id)).rowcount
        return bool(n)


def rotate_master_key(engine: sa.Engine, old: str | list[str], new: str) -> int:
    """Re-encrypt every stored exchange credential from ``old`` (one key or a list / comma list)
    to ``new`` in one transaction; return the number of rows.

    Raises:
        KeyStoreError: a malformed key, or a row that ``old`` cannot decrypt (nothing is changed).
    """
    new_f = _fernets(new)[0]
    rotator = MultiFernet([new_f, *_fernets(old)])
    now = utcnow()
    with write_session(engine) as s:
        rows = s.execute(sa.select(ExchangeKey).order_by(ExchangeKey.id).with_for_update()).scalars().all()
        for row in rows:
            try:
                token = rotator.rotate(row.ciphertext.encode("ascii"))
            except InvalidToken:
                raise KeyStoreError(f"exchange key {row.id} does not decrypt with the old master key; "
                                    "nothing was rotated") from None
            new_f.decrypt(token)  # proof the new key reads it
            row.ciphertext, row.rotated_at = token.decode("ascii"), now
    return len(rows)
