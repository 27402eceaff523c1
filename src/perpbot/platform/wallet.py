"""The wallet: a double-entry ledger per user and currency that never loses or makes a cent.

Every movement is one balanced :class:`~perpbot.platform.ledger_models.WalletEntry` (its lines
sum to zero) with an idempotency key, and one link of the journal hash chain:

==========  ===============================================  ==================================
kind        lines (account: signed amount A > 0)             meaning
==========  ===============================================  ==================================
deposit     external -A, available +A                        money in
withdraw    available -A, external +A                        money out (checks ``available``)
lock        available -A, locked +A                          margin held for an order
release     locked -A, available +A                          margin back (order closed / never sent)
pnl         pnl -P, available +P                             realized PnL P (> 0 profit, < 0 loss)
fee         available -F, fees +F                            fee F (> 0 paid, < 0 rebate)
funding     available -F, funding +F                         funding F (> 0 paid, < 0 received)
==========  ===============================================  ==================================

Concurrency: a movement locks the user's accounts of that currency (PostgreSQL
``SELECT ... FOR UPDATE``, ordered by id; SQLite ``BEGIN IMMEDIATE``), then checks its
idempotency key, then the balance, so concurrent withdrawals cannot overdraw and a retried
request (same key, same parameters) returns the first result without moving money again. A
CHECK constraint in the database keeps ``available`` and ``locked`` >= 0 as a second line.

Amounts are :class:`decimal.Decimal` (or int / decimal strings), 18 decimal places; floats are
refused. Currency codes: 1-16 upper-case letters/digits (``USDT``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from perpbot.platform import chain
from perpbot.platform.db import MONEY_CONTEXT, to_money
from perpbot.platform.ledger_models import CONTRA_KINDS, USER_KINDS, WalletAccount, WalletEntry, WalletLine

_CURRENCY = re.compile(r"^[A-Z0-9]{1,16}$")
_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
_MEMO = re.compile(r"^[^\x00-\x1f\x7f]{0,256}$")  # one line, no control characters (no NUL)
ZERO = Decimal(0)

#: kind -> (debited account kind, credited account kind) for a positive amount A: debit -A, credit +A.
LEGS = {"deposit": ("external", "available"), "withdraw": ("available", "external"),
        "lock": ("available", "locked"), "release": ("locked", "available"),
        "pnl": ("pnl", "available"), "fee": ("available", "fees"), "funding": ("available", "funding")}
SIGNED = ("pnl", "fee", "funding")


class WalletError(ValueError):
    """A wallet request that cannot be done; the message is one line for the user."""


class InsufficientFunds(WalletError):
    """The movement would take an ``available`` or ``locked`` balance below zero."""


class IdempotencyConflict(WalletError):
    """The idempotency key was already used for a different request."""


@dataclass(frozen=True)
class Entry:
    """A posted (or replayed) movement. ``amount`` in ``currency``; ``replayed``: the key was seen before."""

    id: int
    user_id: int
    kind: str
    currency: str
    amount: Decimal
    order_ref: str | None
    memo: str | None
    created_at: datetime
    replayed: bool = False


def _entry(row: WalletEntry, replayed: bool = False) -> Entry:
    return Entry(row.id, row.user_id, row.kind, row.currency, row.amount, row.order_ref, row.memo, row.created_at,
                 replayed)


def request_hash(kind: str, currency: str, amount: Decimal, order_ref: str | None) -> str:
    """SHA-256 of what a request asks for (its retry must ask for the same)."""
    return hashlib.sha256(f"{kind}|{currency}|{format(amount, 'f')}|{order_ref or ''}".encode()).hexdigest()


def check_currency(currency: str) -> str:
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise WalletError(f"currency {currency!r} is not a currency code like 'USDT' (1-16 upper-case letters/digits)")
    return currency


def check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise WalletError("idempotency key must be 1-128 printable ASCII characters without spaces")
    return key


@contextmanager
def write_session(engine: sa.Engine) -> Iterator[Session]:
    """A session in one write transaction (SQLite: ``BEGIN IMMEDIATE``); commits, or rolls back on error."""
    with engine.connect() as conn:
        conn.execution_options(immediate=True)
        with Session(bind=conn, expire_on_commit=False, autoflush=False) as s:
            with s.begin():
                yield s


def ensure_accounts(engine: sa.Engine, user_id: int, currency: str) -> None:
    """Create the user's six accounts in ``currency`` if missing (idempotent, race-free)."""
    rows = [{"user_id": user_id, "currency": currency, "kind": k, "balance": "0"} for k in (*USER_KINDS, *CONTRA_KINDS)]
    with engine.connect() as probe:
        n = probe.execute(sa.select(sa.func.count()).select_from(WalletAccount)
                          .where(WalletAccount.user_id == user_id, WalletAccount.currency == currency)).scalar_one()
    if n == len(rows):
        return
    dialect = engine.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert if dialect == "sqlite" else None
    if insert is None:
        raise WalletError(f"the wallet supports PostgreSQL and SQLite, not {dialect}")
    stmt = insert(WalletAccount).values(rows).on_conflict_do_nothing(index_elements=["user_id", "currency", "kind"])
    with write_session(engine) as s:
        s.execute(stmt)


def lock_accounts(s: Session, user_id: int, currency: str) -> dict[str, WalletAccount]:
    """The user's accounts in ``currency`` by kind, row-locked until the transaction ends."""
    rows = s.execute(sa.select(WalletAccount).where(WalletAccount.user_id == user_id,
                                                    WalletAccount.currency == currency)
                     .order_by(WalletAccount.id).with_for_update()).scalars().all()
    return {a.kind: a for a in rows}


def find_entry(s: Session, user_id: int, key: str) -> WalletEntry | None:
    return s.execute(sa.select(WalletEntry).where(WalletEntry.user_id == user_id,
                                                  WalletEntry.idempotency_key == key)).scalar_one_or_none()


def post(s: Session, accounts: dict[str, WalletAccount], user_id: int, kind: str, currency: str, amount: Decimal,
         key: str, order_ref: str | None = None, memo: str | None = None) -> Entry:
    """Post one movement inside the caller's transaction, after :func:`lock_accounts`.

    Replays (same key, same request) return the stored entry with ``replayed=True``.

    Raises:
        IdempotencyConflict: the key was used for a different request.
        InsufficientFunds: ``available`` / ``locked`` would go below zero.
        WalletError: unknown kind, non-positive amount (deposit/withdraw/lock/release) or zero.
    """
    if kind not in LEGS:
        raise WalletError(f"unknown movement {kind!r} (one of {', '.join(LEGS)})")
    amount = to_money(amount)
    if amount == ZERO or (amount < ZERO and kind not in SIGNED):
        raise WalletError(f"{kind} amount must be > 0, got {format(amount, 'f')}")
    rhash = request_hash(kind, currency, amount, order_ref)
    old = find_entry(s, user_id, key)
    if old is not None:
        if old.request_hash != rhash:
            raise IdempotencyConflict(f"idempotency key {key!r} was already used for a different request")
        return _entry(old, replayed=True)
    debit, credit = LEGS[kind]
    with localcontext(MONEY_CONTEXT):
        new = {debit: accounts[debit].balance - amount, credit: accounts[credit].balance + amount}
    for k, bal in new.items():
        try:
            to_money(bal)
        except ValueError:
            raise WalletError(f"{kind} refused: the {k} balance would reach 1e20 {currency}, beyond what is stored") from None
    for k, bal in new.items():
        if k in USER_KINDS and bal < ZERO:
            with localcontext(MONEY_CONTEXT):
                want, have = format(amount.copy_abs().normalize(), "f"), format(accounts[k].balance.normalize(), "f")
            raise InsufficientFunds(f"{kind} of {want} {currency} refused: {k} balance is {have} {currency}")
    row = WalletEntry(user_id=user_id, idempotency_key=key, request_hash=rhash, kind=kind, currency=currency,
                      amount=amount, order_ref=order_ref, memo=memo)
    s.add(row)
    s.flush()
    s.add_all([WalletLine(entry_id=row.id, account_id=accounts[debit].id, amount=amount.copy_negate()),
               WalletLine(entry_id=row.id, account_id=accounts[credit].id, amount=amount)])
    for k, bal in new.items():
        accounts[k].balance = bal
    s.flush()
    chain.append(s, "wallet_entries", row)
    return _entry(row)


class Wallet:
    """Wallet operations over the platform database (see the module doc for the entries).

    Every method takes ``key``, the idempotency key of the request (unique per user): reuse it
    to retry safely; a different request with a used key raises :class:`IdempotencyConflict`.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def move(self, user_id: int, kind: str, currency: str, amount: Any, key: str, *, order_ref: str | None = None,
             memo: str | None = None) -> Entry:
        """Post one movement of ``kind`` in its own transaction (see :func:`post` for the errors)."""
        currency, key = check_currency(currency), check_key(key)
        amount = to_money(amount)
        if memo is not None and not _MEMO.fullmatch(memo):
            raise WalletError("memo must be at most 256 characters, no control characters")
        ensure_accounts(self.engine, user_id, currency)
        with write_session(self.engine) as s:
            return post(s, lock_accounts(s, user_id, currency), user_id, kind, currency, amount, key, order_ref, memo)

    def deposit(self, user_id: int, currency: str, amount: Any, key: str, memo: str | None = None) -> Entry:
        return self.move(user_id, "deposit", currency, amount, key, memo=memo)

    def withdraw(self, user_id: int, currency: str, amount: Any, key: str, memo: str | None = None) -> Entry:
        return self.move(user_id, "withdraw", currency, amount, key, memo=memo)

    def lock(self, user_id: int, currency: str, amount: Any, key: str, order_ref: str | None = None) -> Entry:
        return self.move(user_id, "lock", currency, amount, key, order_ref=order_ref)

    def release(self, user_id: int, currency: str, amount: Any, key: str, order_ref: str | None = None) -> Entry:
        return self.move(user_id, "release", currency, amount, key, order_ref=order_ref)

    def settle(self, user_id: int, currency: str, key: str, *, order_ref: str, margin: Any, pnl: Any = 0,
               fee: Any = 0, funding: Any = 0) -> list[Entry]:
        """Close an order's position in one transaction: release ``margin``, then book ``pnl``
        (> 0 profit), ``fee`` and ``funding`` (> 0 paid); zero parts are skipped. Entry keys are
        ``key`` + ``:release`` / ``:pnl`` / ``:fee`` / ``:funding``. A loss beyond what is available
        after the release raises :class:`InsufficientFunds` and books nothing (isolated margin caps
        a position's loss at its margin, so a correct caller never hits it)."""
        currency, key = check_currency(currency), check_key(key[:100])
        parts = [("release", to_money(margin)), ("pnl", to_money(pnl)), ("fee", to_money(fee)),
                 ("funding", to_money(funding))]
        ensure_accounts(self.engine, user_id, currency)
        with write_session(self.engine) as s:
            acc = lock_accounts(s, user_id, currency)
            return [post(s, acc, user_id, kind, currency, amt, f"{key}:{kind}", order_ref)
                    for kind, amt in parts if amt != ZERO]

    # ------------------------------------------------------------------ reads
    def balances(self, user_id: int) -> dict[str, dict[str, Decimal]]:
        """``{currency: {"available": D, "locked": D}}`` of one user (empty when none)."""
        with Session(self.engine) as s:
            rows = s.execute(sa.select(WalletAccount.currency, WalletAccount.kind, WalletAccount.balance)
                             .where(WalletAccount.user_id == user_id, WalletAccount.kind.in_(USER_KINDS))
                             .order_by(WalletAccount.currency)).all()
        out: dict[str, dict[str, Decimal]] = {}
        for cur, kind, bal in rows:
            out.setdefault(cur, {"available": ZERO, "locked": ZERO})[kind] = bal
        return out

    def transactions(self, user_id: int, limit: int = 50) -> list[Entry]:
        """The user's last ``limit`` movements, newest first."""
        with Session(self.engine) as s:
            rows = s.execute(sa.select(WalletEntry).where(WalletEntry.user_id == user_id)
                             .order_by(WalletEntry.id.desc()).limit(limit)).scalars().all()
        return [_entry(r) for r in rows]

    def check_books(self) -> list[str]:
        """Every broken invariant, as lines (empty = sound): an entry whose lines do not sum to zero
        or do not number two, an account whose balance differs from the sum of its lines, an
        ``available`` / ``locked`` balance below zero."""
        out: list[str] = []
        with Session(self.engine) as s, localcontext(MONEY_CONTEXT):
            sums: dict[int, Decimal] = {}
            counts: dict[int, int] = {}
            per_account: dict[int, Decimal] = {}
            for entry_id, account_id, amount in s.execute(sa.select(WalletLine.entry_id, WalletLine.account_id,
                                                                    WalletLine.amount)):
                sums[entry_id] = sums.get(entry_id, ZERO) + amount
                counts[entry_id] = counts.get(entry_id, 0) + 1
                per_account[account_id] = per_account.get(account_id, ZERO) + amount
            for entry_id in s.execute(sa.select(WalletEntry.id)).scalars():
                if counts.get(entry_id) != 2 or sums.get(entry_id) != ZERO:
                    out.append(f"entry {entry_id}: {counts.get(entry_id, 0)} lines summing to {sums.get(entry_id, ZERO)}")
            for acc in s.execute(sa.select(WalletAccount)).scalars():
                if acc.balance != per_account.get(acc.id, ZERO):
                    out.append(f"account {acc.id} ({acc.kind}): balance {acc.balance} != lines {per_account.get(acc.id)}")
                if acc.kind in USER_KINDS and acc.balance < ZERO:
                    out.append(f"account {acc.id} ({acc.kind}) is negative: {acc.balance}")
        return out
