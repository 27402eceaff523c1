"""Ledger retention: ``perpbot ledger prune --keep-days N``.

A node that runs for months writes one position snapshot and one prediction per candle and
per symbol (105,120 rows a year each at 5m). Those per-cycle rows are what grows; the money
record does not. :func:`prune_ledger` deletes the per-cycle rows older than the cut-off and
keeps everything an audit or a report needs: runs, orders, fills, trades, equity, funding
payments and risk events.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from perpbot.storage.models import TABLES

#: the per-cycle tables that :func:`prune_ledger` thins (everything else is kept)
PRUNED_TABLES: tuple[sa.Table, ...] = (TABLES["predictions"], TABLES["positions"])


def prune_cutoff(keep_days: int, now: datetime | None = None) -> datetime:
    """UTC time before which rows are pruned: ``now - keep_days`` days.

    Raises ValueError when ``keep_days`` < 1 (pruning today's rows would blind ``perpbot status``)."""
    if int(keep_days) != keep_days or keep_days < 1:
        raise ValueError(f"--keep-days must be a whole number of days >= 1, got {keep_days}")
    now = now or datetime.now(timezone.utc)
    return now - timedelta(days=int(keep_days))


def prune_ledger(ledger, keep_days: int, *, now: datetime | None = None, dry_run: bool = False) -> dict[str, int]:
    """Delete predictions and position snapshots older than ``keep_days`` days (UTC) in ``ledger``
    (a :class:`~perpbot.storage.ledger.Ledger`), in one transaction.

    Returns ``{table name: rows deleted}`` (rows that would be deleted with ``dry_run``).
    Raises ValueError for ``keep_days`` < 1.
    """
    cutoff = prune_cutoff(keep_days, now)

    def txn(conn: sa.Connection) -> dict[str, int]:
        out = {}
        for table in PRUNED_TABLES:
            old = table.c.time < cutoff
            if dry_run:
                out[table.name] = int(conn.execute(sa.select(sa.func.count()).where(old)).scalar_one())
            else:
                out[table.name] = int(conn.execute(sa.delete(table).where(old)).rowcount)
        return out

    return ledger._write(txn)
