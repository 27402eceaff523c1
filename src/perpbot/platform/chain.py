"""The journal hash chain: SHA-256 over every platform order, fill and wallet entry, each link
bound to the previous one, and :func:`verify_journal` that finds any altered, inserted or
deleted row.

Link ``seq`` (1, 2, 3 ... without gaps) covers one row ``(table_name, row_id)``::

    row_digest = sha256(canonical JSON of the row's immutable fields)
    hash       = sha256(prev_hash | seq | table_name | row_id | row_digest)   (ASCII, "|"-joined)
    prev_hash  = hash of link seq - 1, or GENESIS (64 zeros) for seq 1

Immutable fields: an order as placed (not its ``status``/``reason``/``updated_at``, which
change as it progresses), every field of a fill, a wallet entry with all its lines. Money is
written as its exact 18-place decimal string, times as ISO-8601 UTC, so the digest is the
same on SQLite and PostgreSQL.

Links are appended inside the transaction that writes the row (:func:`append`), under a
PostgreSQL advisory lock (SQLite: the writer's ``BEGIN IMMEDIATE``), so ``seq`` is gapless.
The chain's head can be anchored in the TradePolicy contract (:mod:`perpbot.platform.contract`);
:func:`verify_journal` then also checks that the anchored link is still in the chain unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from perpbot.platform.db import to_money
from perpbot.platform.ledger_models import ChainLink, PlatformFill, PlatformOrder, WalletEntry, WalletLine

GENESIS = "0" * 64
_CHAIN_LOCK = 0x70626368  # PostgreSQL advisory lock key of chain appends ("pbch")
ORDER_FIELDS = ("id", "user_id", "client_order_id", "symbol", "side", "qty", "price", "leverage", "margin",
                "currency", "created_at")
FILL_FIELDS = ("id", "order_id", "time", "qty", "price", "fee", "venue_fill_id")
ENTRY_FIELDS = ("id", "user_id", "idempotency_key", "kind", "currency", "amount", "order_ref", "memo", "created_at")
TABLES = {"platform_orders": PlatformOrder, "platform_fills": PlatformFill, "wallet_entries": WalletEntry}


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(to_money(v), "f")
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def row_digest(session: Session, table_name: str, row: Any, lines: list | None = None) -> str:
    """SHA-256 hex of the canonical JSON of ``row``'s immutable fields (a wallet entry with its lines:
    read from ``session`` unless given as ``[(line id, account id, amount), ...]`` in id order)."""
    if table_name == "platform_orders":
        data = {k: _plain(getattr(row, k)) for k in ORDER_FIELDS}
    elif table_name == "platform_fills":
        data = {k: _plain(getattr(row, k)) for k in FILL_FIELDS}
    elif table_name == "wallet_entries":
        data = {k: _plain(getattr(row, k)) for k in ENTRY_FIELDS}
        if lines is None:
            lines = session.execute(sa.select(WalletLine.id, WalletLine.account_id, WalletLine.amount)
                                    .where(WalletLine.entry_id == row.id).order_by(WalletLine.id)).all()
        data["lines"] = [[i, a, _plain(x)] for i, a, x in lines]
    else:
        raise ValueError(f"table {table_name!r} is not in the journal chain (one of {', '.join(TABLES)})")
    return _digest(data)


def link_hash(prev_hash: str, seq: int, table_name: str, row_id: int, digest: str) -> str:
    """``sha256(prev_hash | seq | table_name | row_id | row_digest)`` as hex (see the module doc)."""
    return hashlib.sha256(f"{prev_hash}|{seq}|{table_name}|{row_id}|{digest}".encode("ascii")).hexdigest()


def append(session: Session, table_name: str, row: Any) -> ChainLink:
    """Append the link of ``row`` (already flushed, so it has its id) in the caller's transaction."""
    bind = session.connection()
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    last = session.execute(sa.select(ChainLink.seq, ChainLink.hash).order_by(ChainLink.seq.desc()).limit(1)).first()
    seq, prev = (1, GENESIS) if last is None else (last[0] + 1, last[1])
    digest = row_digest(session, table_name, row)
    link = ChainLink(seq=seq, table_name=table_name, row_id=row.id, row_digest=digest, prev_hash=prev,
                     hash=link_hash(prev, seq, table_name, row.id, digest))
    session.add(link)
    session.flush()
    return link


def head(engine: sa.Engine) -> tuple[int, str]:
    """(seq, hash) of the chain's last link; (0, GENESIS) for an empty chain."""
    with Session(engine) as s:
        last = s.execute(sa.select(ChainLink.seq, ChainLink.hash).order_by(ChainLink.seq.desc()).limit(1)).first()
    return (0, GENESIS) if last is None else (int(last[0]), str(last[1]))


def link_at(engine: sa.Engine, seq: int) -> str | None:
    """Hash of link ``seq`` (None when there is none)."""
    with Session(engine) as s:
        return s.execute(sa.select(ChainLink.hash).where(ChainLink.seq == seq)).scalar_one_or_none()


@dataclass
class Problem:
    """One finding of :func:`verify_journal`: ``kind`` altered | deleted | inserted | broken | anchor."""

    kind: str
    table: str | None
    row_id: int | None
    seq: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "row_id": self.row_id, "seq": self.seq, "detail": self.detail}


@dataclass
class JournalReport:
    """Result of :func:`verify_journal`: ``ok`` when nothing was found; the links and rows checked."""

    ok: bool
    links: int
    head_seq: int
    head_hash: str
    anchored_seq: int | None = None
    anchored_hash: str | None = None
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "links": self.links, "head_seq": self.head_seq, "head_hash": self.head_hash,
                "anchored_seq": self.anchored_seq, "anchored_hash": self.anchored_hash,
                "problems": [p.as_dict() for p in self.problems]}


def verify_journal(engine: sa.Engine, anchor: tuple[int, str] | None = None) -> JournalReport:
    """Recompute the chain and every covered row; report what does not match.

    Finds: a row whose immutable fields changed (``altered``, naming table and id), a link
    whose row is gone (``deleted``), a row without a link (``inserted``), a link whose own hash,
    ``prev_hash`` or ``seq`` does not follow from the previous one (``broken``: links deleted,
    inserted or edited), and, when ``anchor = (seq, hash)`` (the contract's record) is given,
    an anchored link that is missing or different (``anchor``) — the one check that catches a
    chain rewritten consistently from scratch.

    Args:
        engine: the platform database.
        anchor: (seq, hash hex) recorded on chain, or None (seq 0 = nothing anchored yet).
    """
    problems: list[Problem] = []
    with Session(engine) as s:
        links = s.execute(sa.select(ChainLink).order_by(ChainLink.seq)).scalars().all()
        rows = {name: {r.id: r for r in s.execute(sa.select(model)).scalars()} for name, model in TABLES.items()}
        lines: dict[int, list] = {}
        for line in s.execute(sa.select(WalletLine.entry_id, WalletLine.id, WalletLine.account_id, WalletLine.amount)
                              .order_by(WalletLine.id)):
            lines.setdefault(line[0], []).append(tuple(line[1:]))
        prev, expected_seq = GENESIS, 1
        linked: set[tuple[str, int]] = set()
        for link in links:
            if link.seq != expected_seq:
                problems.append(Problem("broken", link.table_name, link.row_id, link.seq,
                                        f"links {expected_seq}..{link.seq - 1} are missing (chain seq jumps to {link.seq})"))
            if link.prev_hash != prev or link.hash != link_hash(link.prev_hash, link.seq, link.table_name,
                                                                link.row_id, link.row_digest):
                problems.append(Problem("broken", link.table_name, link.row_id, link.seq,
                                        f"link {link.seq} does not follow from link {link.seq - 1}"))
            prev, expected_seq = link.hash, link.seq + 1
            key = (link.table_name, link.row_id)
            linked.add(key)
            row = rows.get(link.table_name, {}).get(link.row_id)
            if row is None:
                problems.append(Problem("deleted", link.table_name, link.row_id, link.seq,
                                        f"{link.table_name} row {link.row_id} (link {link.seq}) was deleted"))
            elif row_digest(s, link.table_name, row, lines.get(row.id, []) if link.table_name == "wallet_entries"
                            else None) != link.row_digest:
                problems.append(Problem("altered", link.table_name, link.row_id, link.seq,
                                        f"{link.table_name} row {link.row_id} (link {link.seq}) was altered"))
        for name, by_id in rows.items():
            for rid in sorted(by_id):
                if (name, rid) not in linked:
                    problems.append(Problem("inserted", name, rid, None,
                                            f"{name} row {rid} has no link in the journal chain (inserted)"))
    head_seq, head_hash = (links[-1].seq, links[-1].hash) if links else (0, GENESIS)
    report = JournalReport(ok=False, links=len(links), head_seq=head_seq, head_hash=head_hash)
    if anchor is not None and anchor[0] > 0:
        report.anchored_seq, report.anchored_hash = int(anchor[0]), str(anchor[1])
        by_seq = {link.seq: link.hash for link in links}
        if by_seq.get(anchor[0]) != anchor[1]:
            problems.append(Problem("anchor", None, None, anchor[0],
                                    f"link {anchor[0]} is not the one recorded on chain ({anchor[1][:16]}...)"))
    report.problems = problems
    report.ok = not problems
    return report
