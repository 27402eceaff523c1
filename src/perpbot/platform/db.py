"""Database plumbing of the platform: its declarative base, the exact money type, its engine.

* :class:`Base` has its own ``MetaData`` (same naming convention as the ledger's), so the
  platform's tables never mix into :mod:`perpbot.storage.models`; migration
  ``storage/migrations/versions/0003_platform.py`` creates exactly these tables.
* :class:`Money` is ``NUMERIC(38, 18)`` on PostgreSQL and canonical decimal TEXT on SQLite
  (SQLite has no exact decimal: its NUMERIC affinity would round to a 64-bit float). Python
  side it is always :class:`decimal.Decimal`, quantized to 18 decimal places; a float is
  refused (``TypeError``), so no amount ever passes through binary floating point.
* :func:`make_engine` opens the same database as the ledger with the platform's own pool. On
  SQLite a connection with the execution option ``immediate=True`` starts its transactions
  with ``BEGIN IMMEDIATE`` (the write lock is taken before the first read, so two wallet
  transactions serialize instead of failing on upgrade); PostgreSQL uses row locks
  (``SELECT ... FOR UPDATE``, see :mod:`perpbot.platform.wallet`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

from perpbot.storage.models import NAMING_CONVENTION, UTCDateTime

__all__ = ["Base", "Money", "MONEY_CONTEXT", "UTCDateTime", "make_engine", "to_money", "utcnow", "SCALE"]

#: Decimal places of every stored amount (Numeric(38, 18)).
SCALE = 18
_QUANTUM = Decimal(1).scaleb(-SCALE)
_MAX_ABS = Decimal(10) ** (38 - SCALE)
#: Decimal context of every money computation: 60 significant digits hold any Numeric(38, 18)
#: sum or product exactly (Python's default 28 would round 1e19 + 1e-18); errors raise.
MONEY_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


class Base(DeclarativeBase):
    """Declarative base of the platform tables (own ``MetaData``)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Now, tz-aware UTC."""
    return datetime.now(timezone.utc)


def to_money(value: Any) -> Decimal:
    """``value`` (Decimal, int or a decimal string such as ``"10.5"``) as a Decimal with 18 places.

    Raises:
        TypeError: a float or bool (binary floating point never becomes money) or another type.
        ValueError: not a finite number, or |value| >= 1e20 (Numeric(38, 18)'s range).
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"money must be Decimal, int or a decimal string, not {type(value).__name__} ({value!r})")
    if isinstance(value, (int, str)):
        try:
            value = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be Decimal, int or a decimal string, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"money must be finite, got {value}")
    if value.adjusted() >= 20:  # checked before quantize (no context needed): >= 1e20
        raise ValueError(f"amount {value} is outside Numeric(38, 18) (|amount| < 1e20)")
    with localcontext(MONEY_CONTEXT):  # abs() and quantize() round to the context: 60 digits
        q = value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
        if abs(q) >= _MAX_ABS:
            raise ValueError(f"amount {value} is outside Numeric(38, 18) (|amount| < 1e20)")
        return q + 0  # normalizes -0 to 0


class Money(sa.TypeDecorator):
    """Exact decimal amount: ``NUMERIC(38, 18)`` (PostgreSQL) / canonical TEXT (SQLite); Decimal in Python."""

    impl = sa.Numeric(38, SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(48))
        return dialect.type_descriptor(sa.Numeric(38, SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        q = to_money(value)
        return format(q, "f") if dialect.name == "sqlite" else q

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        if value is None:
            return None
        return to_money(Decimal(value) if isinstance(value, (str, int)) else value)


def money_column_type() -> sa.types.TypeEngine:
    """The DDL type of a Money column as the migration writes it (TEXT on SQLite)."""
    return sa.Numeric(38, SCALE).with_variant(sa.String(48), "sqlite")


def make_engine(url: str) -> sa.Engine:
    """Engine over ``url`` for the platform (its own pool; the ledger keeps its engine).

    SQLite: the parent folder is created, foreign keys enforced, WAL journal, 30 s busy
    timeout; ``BEGIN IMMEDIATE`` for connections with ``execution_options(immediate=True)``,
    plain ``BEGIN`` otherwise. PostgreSQL: ``READ COMMITTED`` (the default) plus row locks.

    Raises:
        sqlalchemy.exc.ArgumentError: ``url`` is not a database URL.
    """
    parsed = sa.engine.make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    file_db = sqlite and parsed.database not in (None, "", ":memory:") and not parsed.database.startswith("file:")
    if file_db:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}} if sqlite else {"pool_size": 10, "max_overflow": 30}
    if sqlite and not file_db:
        kwargs["poolclass"] = sa.pool.StaticPool  # one shared in-memory database
        kwargs["connect_args"]["check_same_thread"] = False
    engine = sa.create_engine(parsed, **kwargs)
    if sqlite:
        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # SQLAlchemy (below) emits BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if file_db:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN")
    return engine


def open_engine(url: str) -> sa.Engine:
    """:func:`make_engine` over ``url``, migrated to the newest schema (the ledger's Alembic
    migrations, which include the platform's ``0003``); idempotent."""
    from perpbot.storage.db import upgrade

    engine = make_engine(url)
    upgrade(engine)
    return engine
