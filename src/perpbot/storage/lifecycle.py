"""Run lifecycle of the ledger: start, finish, abandoned runs, resume (claim), checkpoints.

A run is ``running`` from :meth:`RunLifecycle.start_run` until :meth:`RunLifecycle.finish_run`
sets ``finished`` or ``failed``. A process that dies without finishing (kill -9, power loss,
an unhandled crash) leaves it ``running``; the next run started on the ledger (or an explicit
:meth:`RunLifecycle.mark_abandoned`) marks such runs ``abandoned`` when their owning process
is provably gone (rule: :mod:`perpbot.storage.owner`). :meth:`RunLifecycle.resume_run`
claims a ``running`` run of a dead process, or an ``abandoned`` one, for the current process
(live: resume after a crash; paper: ``perpbot run --mode paper --resume``).

Mixed into :class:`perpbot.storage.ledger.Ledger`; uses its ``_write`` / ``_read_txn`` helpers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from perpbot.storage import owner as owners
from perpbot.storage.convert import LedgerInputError, redact, to_jsonable, utc_timestamp
from perpbot.storage.models import TABLES

RUN_KINDS = ("backtest", "paper", "live")
FINAL_STATUSES = ("finished", "failed")
#: Statuses of a run that a new process may take over (see :meth:`RunLifecycle.resume_run`).
RESUMABLE_STATUSES = ("running", "abandoned")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RunLifecycle:
    """Start / finish / abandon / resume runs (see the module docstring)."""

    def start_run(self, kind: str, strategy: str, symbol: str, timeframe: str, exchange: str = "bitget",
                  config: dict | None = None, model_version: str | None = None,
                  features_hash: str | None = None, data_range: tuple[Any, Any] | None = None,
                  note: str | None = None) -> int:
        """Insert a run with status ``running``, ``started_at`` = now (UTC) and this process as
        its owner; return its id. First marks the runs of dead processes ``abandoned``
        (:meth:`mark_abandoned`).

        ``kind``: backtest | paper | live. ``config`` is redacted (:func:`redact`) and made
        JSON-safe (:func:`to_jsonable`). ``data_range``: (first, last) tz-aware timestamps.
        """
        if kind not in RUN_KINDS:
            raise LedgerInputError(f"run kind {kind!r} is not one of {RUN_KINDS}")
        for name, value in (("strategy", strategy), ("symbol", symbol), ("timeframe", timeframe),
                            ("exchange", exchange)):
            if not isinstance(value, str) or not value:
                raise LedgerInputError(f"run {name} must be a non-empty string, got {value!r}")
        start = end = None
        if data_range is not None:
            start, end = (utc_timestamp(v, f"data_range[{i}]") for i, v in enumerate(data_range))
        row = dict(kind=kind, strategy=strategy, exchange=exchange, symbol=symbol, timeframe=timeframe,
                   started_at=_now(), status="running", model_version=model_version,
                   features_hash=features_hash, config=to_jsonable(redact(config or {}), "config"),
                   metrics=None, data_range_start=start, data_range_end=end, note=note,
                   **owners.this_process().columns())
        self.mark_abandoned()
        runs = TABLES["runs"]
        return self._write(lambda conn: conn.execute(sa.insert(runs).returning(runs.c.id), row).scalar_one())

    def finish_run(self, run_id: int, status: str = "finished", metrics: dict | None = None) -> None:
        """Set ``finished_at`` = now (UTC), ``status`` (finished | failed) and, if given, ``metrics``."""
        if status not in FINAL_STATUSES:
            raise LedgerInputError(f"final run status {status!r} is not one of {FINAL_STATUSES}")
        values: dict[str, Any] = {"finished_at": _now(), "status": status}
        if metrics is not None:
            values["metrics"] = to_jsonable(metrics, "metrics")
        runs = TABLES["runs"]

        def txn(conn: sa.Connection) -> None:
            if conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**values)).rowcount != 1:
                raise self._unknown(run_id)

        self._write(txn)

    def mark_abandoned(self) -> list[int]:
        """Mark ``abandoned`` every ``running`` run whose owning process is provably gone
        (:func:`perpbot.storage.owner.is_alive`); ``status_detail`` says whose and when.
        Returns the ids marked (oldest first). A run claimed meanwhile by another process is
        left alone (the update checks that the owner is still the one found dead)."""
        runs = TABLES["runs"]
        owner_cols = (runs.c.owner_host, runs.c.owner_pid, runs.c.owner_started)
        found = self._read_txn(lambda conn: conn.execute(
            sa.select(runs.c.id, *owner_cols).where(runs.c.status == "running").order_by(runs.c.id)).all())
        dead = [r for r in found if not owners.is_alive(r.owner_host, r.owner_pid, r.owner_started)]
        if not dead:
            return []
        me = owners.this_process()
        stamp = _now().isoformat(timespec="seconds")

        def txn(conn: sa.Connection) -> list[int]:
            marked = []
            for r in dead:
                who = (f"pid {r.owner_pid} on {r.owner_host}" if r.owner_pid is not None
                       else "no owner recorded (started before owner tracking)")
                detail = f"abandoned: its process ({who}) is gone; marked at {stamp} by pid {me.pid} on {me.host}"
                same_owner = sa.and_(*(c.is_(getattr(r, c.name)) if getattr(r, c.name) is None
                                       else c == getattr(r, c.name) for c in owner_cols))
                stmt = (sa.update(runs).where(runs.c.id == r.id, runs.c.status == "running", same_owner)
                        .values(status="abandoned", status_detail=detail))
                if conn.execute(stmt).rowcount == 1:
                    marked.append(int(r.id))
            return marked

        return self._write(txn)

    def abandon_run(self, run_id: int, detail: str) -> None:
        """Mark run ``run_id`` ``abandoned`` now, e.g. a paper replay interrupted by the
        operator (it can be resumed); ``detail`` says why."""
        runs = TABLES["runs"]

        def txn(conn: sa.Connection) -> None:
            stmt = sa.update(runs).where(runs.c.id == run_id).values(status="abandoned", status_detail=detail)
            if conn.execute(stmt).rowcount != 1:
                raise self._unknown(run_id)

        self._write(txn)

    def delete_runs(self, run_ids: list[int]) -> int:
        """Delete runs and every row they own (children first, in one transaction); a run id
        that is not in the ledger raises UnknownRunError and nothing is deleted. Returns the
        number of runs deleted."""
        ids = sorted({int(r) for r in run_ids})
        runs = TABLES["runs"]
        children = [t for t in reversed(list(TABLES.values())) if t.name != "runs" and "run_id" in t.c]

        def txn(conn: sa.Connection) -> int:
            found = set(conn.execute(sa.select(runs.c.id).where(runs.c.id.in_(ids))).scalars())
            missing = [r for r in ids if r not in found]
            if missing:
                raise self._unknown(missing[0])
            for table in children:
                conn.execute(sa.delete(table).where(table.c.run_id.in_(ids)))
            return conn.execute(sa.delete(runs).where(runs.c.id.in_(ids))).rowcount

        return self._write(txn)

    def resume_run(self, run_id: int) -> dict[str, Any]:
        """Claim run ``run_id`` for this process and set it ``running`` again; return the run
        (as :meth:`get_run`, before the claim's changes to status / owner).

        Allowed for an ``abandoned`` run, a ``running`` run whose process is gone, and a
        run this very process owns. Raises :class:`UnknownRunError` for an unknown id,
        :class:`LedgerInputError` for a finished / failed run and
        :class:`perpbot.storage.ledger.LedgerConflictError` when its process is still alive.
        """
        from perpbot.storage.ledger import LedgerConflictError

        runs = TABLES["runs"]
        me = owners.this_process()

        def txn(conn: sa.Connection) -> dict[str, Any]:
            rid = self._check_run(conn, run_id)
            row = conn.execute(sa.select(runs).where(runs.c.id == rid).with_for_update()).mappings().one()
            status = row["status"]
            if status not in RESUMABLE_STATUSES:
                raise LedgerInputError(f"run {rid} is {status}: only a running or abandoned run can be resumed")
            mine = (row["owner_host"], row["owner_pid"]) == (me.host, me.pid)
            if status == "running" and not mine and owners.is_alive(row["owner_host"], row["owner_pid"],
                                                                     row["owner_started"]):
                raise LedgerConflictError(f"run {rid} is still running in pid {row['owner_pid']} on "
                                          f"{row['owner_host']}: stop that process first")
            detail = f"resumed at {_now().isoformat(timespec='seconds')} by pid {me.pid} on {me.host}"
            conn.execute(sa.update(runs).where(runs.c.id == rid).values(
                status="running", finished_at=None, status_detail=detail, **me.columns()))
            return dict(row)

        return self._run_values(self._write(txn))

    def checkpoint(self, run_id: int) -> dict[str, Any] | None:
        """The run's checkpoint (JSON written with its last recorded candle), or None."""
        return self.get_run(run_id).get("checkpoint")
