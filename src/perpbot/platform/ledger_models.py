"""ORM models of the platform's money and trade records: the double-entry wallet, platform
orders and fills, and the SHA-256 hash chain over them.

Wallet (double entry, per user and currency):

* :class:`WalletAccount` — one row per (user, currency, kind). The user's own money is in
  ``available`` and ``locked`` (margin held for an order); the contra accounts ``external``
  (deposits in / withdrawals out), ``pnl`` (the venue's side of realized PnL), ``fees`` and
  ``funding`` (paid to / received from the venue) make every movement balance. ``balance`` is
  the sum of the account's lines, kept on the row so a row lock guards it; a CHECK keeps
  ``available`` and ``locked`` >= 0 in the database itself.
* :class:`WalletEntry` — one movement (deposit, withdraw, lock, release, pnl, fee, funding)
  with its idempotency key (unique per user): a retried request finds its entry and moves
  nothing. :class:`WalletLine` — the entry's signed legs; they sum to zero per entry.

Orders/fills: :class:`PlatformOrder` (an order of a user, from margin lock to fill or release)
and :class:`PlatformFill`. :class:`ChainLink` — the journal's hash chain: one link per order,
fill and wallet entry, ``hash = sha256(prev_hash | seq | table | row_id | row_digest)`` (see
:mod:`perpbot.platform.chain`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from perpbot.platform.db import Base, Money, UTCDateTime, utcnow

USER_KINDS = ("available", "locked")
CONTRA_KINDS = ("external", "pnl", "fees", "funding")
ENTRY_KINDS = ("deposit", "withdraw", "lock", "release", "pnl", "fee", "funding")
ORDER_STATUSES = ("locked", "sending", "filled", "released", "refused", "closed")


class WalletAccount(Base):
    """One account of the double-entry wallet (see the module doc); ``balance`` in ``currency``."""

    __tablename__ = "wallet_accounts"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "currency", "kind"),
        sa.CheckConstraint("kind NOT IN ('available', 'locked') OR CAST(balance AS REAL) >= 0", name="nonneg"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("platform_users.id", ondelete="CASCADE"))
    currency: Mapped[str] = mapped_column(sa.String(16))
    kind: Mapped[str] = mapped_column(sa.String(16))
    balance: Mapped[Decimal] = mapped_column(Money())


class WalletEntry(Base):
    """One wallet movement (a balanced journal entry). ``amount`` > 0 is its size in ``currency``."""

    __tablename__ = "wallet_entries"
    __table_args__ = (sa.UniqueConstraint("user_id", "idempotency_key"), sa.Index(None, "user_id", "id"))

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("platform_users.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(sa.String(128))
    request_hash: Mapped[str] = mapped_column(sa.String(64))  # sha256 of (kind, currency, amount, order_ref)
    kind: Mapped[str] = mapped_column(sa.String(16))
    currency: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[Decimal] = mapped_column(Money())
    order_ref: Mapped[str | None] = mapped_column(sa.String(64))  # client_order_id for lock/release/settle
    memo: Mapped[str | None] = mapped_column(sa.String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WalletLine(Base):
    """A signed leg of an entry: ``amount`` added to ``account_id``'s balance."""

    __tablename__ = "wallet_lines"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("wallet_entries.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("wallet_accounts.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())


class PlatformOrder(Base):
    """An order of a platform user. Immutable as placed, except ``status``/``reason``/``updated_at``.

    ``qty`` base asset, ``price`` USDT (the reference price the margin was computed at),
    ``leverage`` x, ``margin`` USDT = qty x price / leverage, locked in the wallet before sending.
    """

    __tablename__ = "platform_orders"
    __table_args__ = (sa.Index(None, "status", "created_at"), sa.Index(None, "user_id", "id"))

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("platform_users.id", ondelete="CASCADE"))
    client_order_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    symbol: Mapped[str] = mapped_column(sa.String(64))
    side: Mapped[str] = mapped_column(sa.String(8))  # buy | sell
    qty: Mapped[Decimal] = mapped_column(Money())
    price: Mapped[Decimal] = mapped_column(Money())
    leverage: Mapped[Decimal] = mapped_column(Money())
    margin: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(sa.String(16))  # margin currency (USDT)
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PlatformFill(Base):
    """An execution of a platform order: ``qty`` base asset at ``price`` USDT, ``fee`` USDT (> 0 paid)."""

    __tablename__ = "platform_fills"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("platform_orders.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    qty: Mapped[Decimal] = mapped_column(Money())
    price: Mapped[Decimal] = mapped_column(Money())
    fee: Mapped[Decimal] = mapped_column(Money())
    venue_fill_id: Mapped[str | None] = mapped_column(sa.String(64))


class ChainLink(Base):
    """One link of the journal hash chain (``seq`` 1, 2, ... without gaps)."""

    __tablename__ = "platform_chain"
    __table_args__ = (sa.UniqueConstraint("table_name", "row_id"),)

    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    table_name: Mapped[str] = mapped_column(sa.String(32))
    row_id: Mapped[int] = mapped_column(sa.Integer)
    row_digest: Mapped[str] = mapped_column(sa.String(64))  # sha256 hex of the row's canonical JSON
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
