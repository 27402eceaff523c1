"""ORM models of the platform: users and access, risk profiles, oracle checks (this module);
the wallet, platform orders/fills and the hash chain are in :mod:`perpbot.platform.ledger_models`.

Conventions as in :mod:`perpbot.storage.models`: timestamps :class:`UTCDateTime` (tz-aware UTC),
codes plain lower-case text validated by the services, not the database. Money is
:class:`perpbot.platform.db.Money` (exact Decimal). Nothing secret is stored in clear:
passwords are argon2 hashes, API keys SHA-256 digests of 256-bit random tokens, exchange
keys Fernet tokens (:mod:`perpbot.platform.keystore`).

Migration ``storage/migrations/versions/0003_platform.py`` creates exactly these tables
(tests/test_platform_schema.py compares the two with Alembic's ``compare_metadata``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from perpbot.platform.db import Base, UTCDateTime, utcnow

ROLES = ("admin", "trader", "viewer")
PROFILE_NAMES = ("conservative", "moderate", "aggressive")


class User(Base):
    """A platform account. ``role``: admin | trader | viewer; ``risk_profile``: a PROFILE_NAMES entry."""

    __tablename__ = "platform_users"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))  # argon2id (pwdlib)
    role: Mapped[str] = mapped_column(sa.String(16))
    risk_profile: Mapped[str] = mapped_column(sa.String(16), default="conservative")
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(sa.Integer, default=0)  # consecutive, reset on success
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKey(Base):
    """A revocable API key for a bot: only its SHA-256 digest is stored; ``prefix`` identifies it."""

    __tablename__ = "platform_api_keys"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("platform_users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    prefix: Mapped[str] = mapped_column(sa.String(16))  # first characters of the key, shown in lists
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # sha256 hex of the whole key
    role: Mapped[str] = mapped_column(sa.String(16))  # never above the owner's role
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """One audit row: a login (ok / failed / locked) or a change (who, what, on what). No secrets."""

    __tablename__ = "platform_audit"
    __table_args__ = (sa.Index(None, "time"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(sa.Integer)  # user id; None = anonymous / system
    action: Mapped[str] = mapped_column(sa.String(48))
    target: Mapped[str | None] = mapped_column(sa.String(128))
    client: Mapped[str | None] = mapped_column(sa.String(64))  # client address of the request
    detail: Mapped[Any | None] = mapped_column(sa.JSON(none_as_null=True))


class ExchangeKey(Base):
    """A user's exchange API credentials, encrypted (a Fernet token of their JSON); never returned."""

    __tablename__ = "platform_exchange_keys"
    __table_args__ = (sa.UniqueConstraint("user_id", "exchange", "label"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("platform_users.id", ondelete="CASCADE"))
    exchange: Mapped[str] = mapped_column(sa.String(32))  # ccxt id
    label: Mapped[str] = mapped_column(sa.String(64))
    ciphertext: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RiskProfileRow(Base):
    """Parameters of one risk profile (fractions, not percents); edited by an admin."""

    __tablename__ = "platform_risk_profiles"

    name: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    min_confidence: Mapped[float] = mapped_column(sa.Double)  # model probability a call must reach
    max_position_frac: Mapped[float] = mapped_column(sa.Double)  # of the available balance, as margin
    max_leverage: Mapped[float] = mapped_column(sa.Double)  # x
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(sa.Integer)


class OracleCheck(Base):
    """One oracle-guard verdict before an entry: the sources, the median and why it passed or not."""

    __tablename__ = "platform_oracle_checks"
    __table_args__ = (sa.Index(None, "symbol", "time"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user_id: Mapped[int | None] = mapped_column(sa.Integer)
    symbol: Mapped[str] = mapped_column(sa.String(64))
    venue: Mapped[str] = mapped_column(sa.String(32))
    venue_price: Mapped[float | None] = mapped_column(sa.Double)  # USDT
    median: Mapped[float | None] = mapped_column(sa.Double)  # USDT, of the fresh independent sources
    max_deviation_bps: Mapped[float | None] = mapped_column(sa.Double)
    verdict: Mapped[str] = mapped_column(sa.String(8))  # pass | veto
    reasons: Mapped[Any] = mapped_column(sa.JSON)  # list of one-line reasons (empty on pass)
    sources: Mapped[Any] = mapped_column(sa.JSON)  # [{name, price, age_s, deviation_bps, fresh, error}]
