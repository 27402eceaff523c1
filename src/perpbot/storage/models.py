"""ORM models of the ledger: the tables every run (backtest, paper, live) writes into.

Conventions, the same in every table:

* timestamps are :class:`UTCDateTime` (``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, a
  naive-UTC ``DATETIME`` text on SQLite); they are written and read back as tz-aware UTC;
* amounts (prices, fees, PnL, margin, funding, equity) are USDT, quantities are in the
  base asset (SOL for SOL/USDT), both stored as ``DOUBLE PRECISION`` (:class:`sqlalchemy.Double`);
* every per-run table has ``run_id`` (FK ``runs.id``, ``ON DELETE CASCADE``) and an index
  on ``(run_id, time)``;
* codes are plain lower-case text (``kind`` backtest|paper|live, ``side`` buy|sell or
  long|short, ``liquidity`` taker|maker ...); the ledger validates them, the database does not,
  so new values need no migration.

Migration ``versions/0001_initial.py`` creates these tables, ``0002_run_owner_checkpoint.py``
adds the runs' owner and checkpoint columns; a test compares the migrated schema with these
models (Alembic's ``compare_metadata``). Change both together (a new migration for a new column).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_SQLITE_FORMAT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # SQLAlchemy's SQLite DATETIME storage format


class UTCDateTime(sa.TypeDecorator):
    """A timestamp that is always tz-aware UTC on the Python side.

    Bind: accepts a tz-aware :class:`datetime.datetime` (``pandas.Timestamp`` too), converts it
    to UTC; SQLite gets it without tzinfo (SQLite has no time-zone type), PostgreSQL with it.
    A naive datetime raises ``ValueError`` (we never guess a time zone).
    Result: returns a ``datetime`` with ``tzinfo=timezone.utc`` on both back ends.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime needs a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"UTCDateTime refuses naive datetime {value!r}: give it a time zone (UTC)")
        return value.astimezone(timezone.utc)

    def bind_processor(self, dialect: sa.Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        to_utc = self.process_bind_param

        def process(value: Any) -> str | None:
            # One step instead of TypeDecorator + SQLite DATETIME processors (3x faster on
            # 86,400-row inserts); writes SQLAlchemy's SQLite DATETIME text format exactly.
            if value is None:
                return None
            v = to_utc(value, dialect)
            return _SQLITE_FORMAT % (v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond)

        return process

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base; ``Base.metadata`` is the target of the migrations."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _run_fk() -> Any:
    return sa.ForeignKey("runs.id", ondelete="CASCADE")


class Run(Base):
    """One backtest, paper or live run: what ran, on what, when, and its summary metrics."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # backtest | paper | live
    strategy: Mapped[str] = mapped_column(sa.String(64))  # ai | ema-cross | scoring | buy-and-hold ...
    exchange: Mapped[str] = mapped_column(sa.String(32))
    symbol: Mapped[str] = mapped_column(sa.String(64))  # ccxt unified, e.g. SOL/USDT:USDT
    timeframe: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(sa.String(16))  # running | finished | failed | abandoned
    model_version: Mapped[str | None] = mapped_column(sa.String(128))
    features_hash: Mapped[str | None] = mapped_column(sa.String(128))
    config: Mapped[Any | None] = mapped_column(sa.JSON(none_as_null=True))  # secrets redacted
    metrics: Mapped[Any | None] = mapped_column(sa.JSON(none_as_null=True))
    data_range_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    data_range_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(sa.Text)
    # the process that writes the run (see perpbot.storage.owner): a "running" run whose process
    # is gone is marked "abandoned" at the next start
    owner_host: Mapped[str | None] = mapped_column(sa.String(255))
    owner_pid: Mapped[int | None] = mapped_column(sa.Integer)
    owner_started: Mapped[float | None] = mapped_column(sa.Double)  # process start, s since the epoch (UTC)
    status_detail: Mapped[str | None] = mapped_column(sa.Text)  # why abandoned / when resumed
    # paper runs: the simulated account after the last recorded candle (written in the same
    # transaction as that candle's rows), from which ``perpbot run --resume`` continues
    checkpoint: Mapped[Any | None] = mapped_column(sa.JSON(none_as_null=True))


class Prediction(Base):
    """A model's output at one bar: class probabilities, the signal and what was decided."""

    __tablename__ = "predictions"
    __table_args__ = (sa.Index(None, "run_id", "time"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk())
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    bar: Mapped[int | None] = mapped_column(sa.Integer)
    model_version: Mapped[str | None] = mapped_column(sa.String(128))
    features_hash: Mapped[str | None] = mapped_column(sa.String(128))
    p_down: Mapped[float | None] = mapped_column(sa.Double)
    p_flat: Mapped[float | None] = mapped_column(sa.Double)
    p_up: Mapped[float | None] = mapped_column(sa.Double)
    confidence: Mapped[float | None] = mapped_column(sa.Double)
    signal: Mapped[int | None] = mapped_column(sa.SmallInteger)  # -1 sell, 0 hold, 1 buy
    decision: Mapped[str | None] = mapped_column(sa.Text)  # buy | sell | hold | vetoed:cooldown ...
    # the triple-barrier label realised after the prediction (-1/0/+1); NULL until its horizon passed
    realised_label: Mapped[int | None] = mapped_column(sa.SmallInteger)


class Order(Base):
    """An order sent (or simulated). ``client_order_id`` is unique: an order is never sent twice."""

    __tablename__ = "orders"
    __table_args__ = (sa.Index(None, "run_id", "time"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk())
    client_order_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(64))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    side: Mapped[str] = mapped_column(sa.String(8))  # buy | sell
    type: Mapped[str] = mapped_column(sa.String(16))  # market | limit | stop | take_profit
    qty: Mapped[float] = mapped_column(sa.Double)  # base asset
    price: Mapped[float | None] = mapped_column(sa.Double)  # limit or trigger price, USDT
    reduce_only: Mapped[bool] = mapped_column(sa.Boolean)
    status: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    trade_no: Mapped[int | None] = mapped_column(sa.Integer)


class Fill(Base):
    """An execution of (part of) an order."""

    __tablename__ = "fills"
    __table_args__ = (sa.Index(None, "run_id", "time"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk())
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    side: Mapped[str] = mapped_column(sa.String(8))  # buy | sell
    qty: Mapped[float] = mapped_column(sa.Double)
    price: Mapped[float] = mapped_column(sa.Double)
    fee: Mapped[float] = mapped_column(sa.Double)  # USDT, > 0 = paid
    liquidity: Mapped[str] = mapped_column(sa.String(8))  # taker | maker


class Trade(Base):
    """A closed (or still open: exit columns null) position, from entry to exit."""

    __tablename__ = "trades"
    __table_args__ = (sa.UniqueConstraint("run_id", "trade_no"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk())
    trade_no: Mapped[int] = mapped_column(sa.Integer)
    side: Mapped[str] = mapped_column(sa.String(8))  # long | short
    qty: Mapped[float] = mapped_column(sa.Double)
    entry_time: Mapped[datetime] = mapped_column(UTCDateTime())
    entry_price: Mapped[float] = mapped_column(sa.Double)
    exit_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exit_price: Mapped[float | None] = mapped_column(sa.Double)
    exit_reason: Mapped[str | None] = mapped_column(sa.String(32))
    gross_pnl: Mapped[float | None] = mapped_column(sa.Double)
    fees: Mapped[float | None] = mapped_column(sa.Double)
    funding: Mapped[float | None] = mapped_column(sa.Double)  # > 0 = paid
    pnl: Mapped[float | None] = mapped_column(sa.Double)  # net: gross - fees - funding
    leverage: Mapped[float | None] = mapped_column(sa.Double)
    margin: Mapped[float | None] = mapped_column(sa.Double)
    stop_loss: Mapped[float | None] = mapped_column(sa.Double)
    take_profit: Mapped[float | None] = mapped_column(sa.Double)
    liquidation_price: Mapped[float | None] = mapped_column(sa.Double)
    entry_bar: Mapped[int | None] = mapped_column(sa.Integer)
    exit_bar: Mapped[int | None] = mapped_column(sa.Integer)


class Position(Base):
    """A snapshot of the open position (paper/live loop)."""

    __tablename__ = "positions"
    __table_args__ = (sa.Index(None, "run_id", "time"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk())
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    side: Mapped[str] = mapped_column(sa.String(8))  # long | short | flat
    qty: Mapped[float] = mapped_column(sa.Double)
    entry_price: Mapped[float | None] = mapped_column(sa.Double)
    mark_price: Mapped[float | None] = mapped_column(sa.Double)
    liquidation_price: Mapped[float | None] = mapped_column(sa.Double)
    stop_loss: Mapped[float | None] = mapped_column(sa.Double)
    take_profit: Mapped[float | None] = mapped_column(sa.Double)
    margin: Mapped[float | None] = mapped_column(sa.Double)
    unrealized_pnl: Mapped[float | None] = mapped_column(sa.Double)


class Equity(Base):
    """Account equity (USDT) per bar or snapshot."""

    __tablename__ = "equity"
    __table_args__ = (sa.Index(None, "run_id", "time"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk())
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    equity: Mapped[float] = mapped_column(sa.Double)
    balance: Mapped[float | None] = mapped_column(sa.Double)
    position_qty: Mapped[float | None] = mapped_column(sa.Double)  # signed: long > 0


class RiskEventRow(Base):
    """A risk event: an entry veto or a change of trading state (see ``perpbot.types.RiskEvent``)."""

    __tablename__ = "risk_events"
    __table_args__ = (sa.Index(None, "run_id", "time"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk())
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    bar: Mapped[int | None] = mapped_column(sa.Integer)
    event: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[float | None] = mapped_column(sa.Double)
    detail: Mapped[str | None] = mapped_column(sa.Text)


class FundingPayment(Base):
    """A funding settlement: amount = qty × mark_price × rate (USDT, > 0 = paid by us)."""

    __tablename__ = "funding_payments"
    __table_args__ = (sa.Index(None, "run_id", "time"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk())
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    rate: Mapped[float] = mapped_column(sa.Double)  # fraction per funding interval
    mark_price: Mapped[float | None] = mapped_column(sa.Double)
    qty: Mapped[float | None] = mapped_column(sa.Double)  # signed: long > 0
    amount: Mapped[float] = mapped_column(sa.Double)


metadata = Base.metadata
TABLES = {t.name: t for t in metadata.sorted_tables}
