"""The ledger: records everything a backtest, paper or live run does, and reads it back.

``Ledger(url)`` opens (and migrates to the newest schema) a SQLite file
(``sqlite:///runs/perpbot.db``, folder created if missing) or a PostgreSQL database
(``postgresql+psycopg://user@host/db``). Writers take pandas frames and use bulk inserts
(one DBAPI ``executemany`` per table on SQLite, ``COPY`` on PostgreSQL: 86,400 equity rows
take ~0.3 s); every public writer is one transaction, so an error leaves nothing
half-written. Readers return frames with tz-aware UTC timestamps. Amounts are USDT,
quantities base asset. Table layout: :mod:`perpbot.storage.models`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa

from perpbot.storage import db
from perpbot.storage.convert import (
    Col, LedgerError, LedgerInputError, UnknownRunError, frame_to_columns, frame_to_rows, label,
    orders_and_fills, redact, split_fees, to_jsonable, trade_rows, utc_index,
)
from perpbot.storage.db import writer_cols
from perpbot.storage.lifecycle import FINAL_STATUSES, RESUMABLE_STATUSES, RUN_KINDS, RunLifecycle  # noqa: F401
from perpbot.storage.models import TABLES
from perpbot.storage.readers import LedgerReaders
from perpbot.types import ExitReason, RiskEvent

__all__ = ["Ledger", "LedgerError", "LedgerConflictError", "LedgerInputError", "UnknownRunError",
           "redact", "to_jsonable", "split_fees"]

ORDER_SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop", "take_profit")
LIQUIDITY = ("taker", "maker")
_SIDES = {1: "long", -1: "short", 0: "flat"}
_EXIT_LABELS = {e.value: e.label for e in ExitReason}
_RISK_LABELS = {e.value: e.label for e in RiskEvent}
_FUNDING_COLS = writer_cols("funding_payments", rate=Col("rate", "float", True, aliases=("funding_rate",)))
T = TypeVar("T")
_TRADE_COLS = writer_cols("trades", trade_no=Col("trade_no", "int", True, source="trade_id",
                                                 aliases=("trade_no",)))


class LedgerConflictError(LedgerError):
    """A write broke a uniqueness / foreign-key rule (e.g. a client order id recorded twice)."""


class Ledger(RunLifecycle, LedgerReaders):
    """The run ledger on one database. See the module docstring; runs' lifecycle (start,
    finish, abandoned runs, resume): :class:`perpbot.storage.lifecycle.RunLifecycle`;
    readers: :class:`perpbot.storage.readers.LedgerReaders`.

    Concurrency: any number of threads and processes may write one ledger at once. Every
    public writer is one short transaction (its input is checked and converted before the
    transaction opens); on SQLite it starts with BEGIN IMMEDIATE and waits up to
    ``busy_timeout_ms`` for the write lock, and the whole transaction is retried with backoff
    while the database stays locked, for up to ``retry_seconds``
    (:func:`perpbot.storage.db.retrying`); readers retry the same way. Only then does the
    lock error (``sqlalchemy.exc.OperationalError``) reach the caller, with nothing written.

    Raises :class:`UnknownRunError` (a ``KeyError``) for unknown run ids,
    :class:`LedgerInputError` (a ``ValueError``) for unusable input, and
    :class:`LedgerConflictError` when a write breaks a uniqueness rule.
    """

    def __init__(self, url: str, *, echo: bool = False, busy_timeout_ms: int = db.SQLITE_BUSY_TIMEOUT_MS,
                 retry_seconds: float = db.RETRY_SECONDS) -> None:
        self.url = url
        self.retry_seconds = retry_seconds
        self.engine = db.make_engine(url, echo=echo, busy_timeout_ms=busy_timeout_ms)
        self._writer = db.write_engine(self.engine)
        db.upgrade(self.engine)

    def __repr__(self) -> str:
        return f"Ledger({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Close all pooled connections."""
        self.engine.dispose()

    @staticmethod
    def upgrade(url: str) -> None:
        """Migrate the database at ``url`` to the newest schema (``alembic upgrade head``).

        Idempotent: a database already at head is left as it is.
        """
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
        finally:
            engine.dispose()

    # ------------------------------------------------------------------ bulk writers

    def record_predictions(self, run_id: int, df: pd.DataFrame) -> int:
        """Write model outputs. Columns: time (or DatetimeIndex; required), bar, p_down, p_flat,
        p_up, confidence, signal (-1/0/1), decision, model_version, features_hash (optional).
        Returns the number of rows written."""
        return self.record_run_bulk(run_id, predictions=df)["predictions"]

    def record_outcomes(self, run_id: int, labels: pd.Series) -> int:
        """Set ``realised_label`` (-1/0/+1) of the run's predictions whose time is in ``labels``'
        index (tz-aware UTC times -> label) and that have none yet; NaN labels are skipped.
        One transaction. Returns the number of predictions labelled."""
        if not isinstance(labels, pd.Series) or not isinstance(labels.index, pd.DatetimeIndex):
            raise LedgerInputError("outcomes: expected a pandas Series indexed by prediction time")
        given = labels.dropna()
        if given.index.tz is None:
            raise LedgerInputError("outcomes: prediction times must be tz-aware (UTC)")
        rows = [{"t": t.to_pydatetime(), "label": int(v)} for t, v in given.items()]
        if any(r["label"] not in (-1, 0, 1) for r in rows):
            raise LedgerInputError("outcomes: labels must be -1, 0 or +1")
        table = TABLES["predictions"]
        stmt = (sa.update(table).where(table.c.run_id == sa.bindparam("rid"), table.c.time == sa.bindparam("t"),
                                       table.c.realised_label.is_(None))
                .values(realised_label=sa.bindparam("label")))

        def txn(conn: sa.Connection) -> int:
            rid = self._check_run(conn, run_id)
            return sum(int(conn.execute(stmt, {**r, "rid": rid}).rowcount) for r in rows)

        return self._write(txn) if rows else 0

    def record_trades(self, run_id: int, trades: pd.DataFrame) -> int:
        """Write a trades frame (``perpbot.types.TRADE_COLUMNS``) and its derived orders and fills.

        Per trade: an entry order + fill (market, reduce_only False, reason "entry",
        client id ``pb{run_id}-{trade_no}-open``) and, when it has an exit, an exit order + fill
        (reduce_only True, reason = exit_reason, client id ``pb{run_id}-{trade_no}-close``; type
        stop for stop_loss/trailing_stop, take_profit for take_profit, else market; price = the
        trade's stop_loss / take_profit trigger for those, else NULL). Fills are taker, at
        entry_price / exit_price. Fill fees: columns ``entry_fee``/``exit_fee`` when present,
        else :func:`split_fees` of ``fees`` by notional. ``side`` accepts +1/-1 or long/short;
        ``exit_reason`` a label or an ``ExitReason`` code. One transaction. Returns trade count.
        """
        return self.record_run_bulk(run_id, trades=trades)["trades"]

    def record_equity(self, run_id: int, equity: pd.Series | pd.DataFrame) -> int:
        """Write equity (USDT): a Series indexed by tz-aware time, or a frame with time (or
        DatetimeIndex), equity, optional balance and position_qty. Returns rows written."""
        return self.record_run_bulk(run_id, equity=equity)["equity"]

    def record_risk_events(self, run_id: int, df: pd.DataFrame) -> int:
        """Write risk events: time, bar, event (label or ``RiskEvent`` code), value, optional detail."""
        return self.record_run_bulk(run_id, risk_events=df)["risk_events"]

    def record_funding(self, run_id: int, df: pd.DataFrame) -> int:
        """Write funding payments: time, rate (or funding_rate; fraction per interval), mark_price,
        qty (signed, long > 0), amount (USDT, > 0 = paid; = qty × mark_price × rate)."""
        return self.record_run_bulk(run_id, funding=df)["funding"]

    def record_run_bulk(self, run_id: int, *, trades: pd.DataFrame | None = None,
                        equity: pd.Series | pd.DataFrame | None = None,
                        risk_events: pd.DataFrame | None = None, predictions: pd.DataFrame | None = None,
                        funding: pd.DataFrame | None = None, positions: pd.DataFrame | None = None,
                        checkpoint: dict | None = None, replace_equity: bool = False,
                        derive_orders: bool = True) -> dict[str, int]:
        """Write everything of a finished backtest (or of a paper cycle) in ONE transaction; all
        inputs are checked before anything is written, and any database error rolls back every part.

        ``positions``: position snapshots (see :meth:`record_position`). ``checkpoint``: a
        JSON-safe dict stored as the run's checkpoint in the same transaction (the paper bot's
        account after the candles these rows belong to), so the two always agree.
        ``replace_equity``: the given equity rows replace the run's rows at the same times.
        ``derive_orders``: also write each trade's entry/exit order and fill (simulated runs).
        Live runs pass False: their real orders and fills are recorded as they happen.

        Returns rows written per part: {"predictions", "risk_events", "funding", "equity",
        "positions", "trades", "orders", "fills"}.
        """
        parts: dict[str, dict[str, Any]] = {}
        if predictions is not None:
            parts["predictions"] = frame_to_columns(predictions, writer_cols("predictions"), "predictions")
        if risk_events is not None:
            parts["risk_events"] = frame_to_columns(_risk_labels(risk_events), writer_cols("risk_events"),
                                                    "risk_events")
        if funding is not None:
            parts["funding_payments"] = frame_to_columns(funding, _FUNDING_COLS, "funding")
        if equity is not None:
            parts["equity"] = frame_to_columns(_equity_frame(equity), writer_cols("equity"), "equity")
        if positions is not None:
            parts["positions"] = frame_to_columns(_position_sides(positions), writer_cols("positions"), "positions")
        trades_ = trade_rows(trades, _TRADE_COLS, _EXIT_LABELS) if trades is not None else []
        state = to_jsonable(checkpoint, "checkpoint") if checkpoint is not None else None
        runs = TABLES["runs"]

        def txn(conn: sa.Connection) -> dict[str, int]:
            counts = {"predictions": 0, "risk_events": 0, "funding": 0, "equity": 0, "positions": 0,
                      "trades": 0, "orders": 0, "fills": 0}
            rid = self._check_run(conn, run_id)
            if replace_equity and "equity" in parts:
                eq = TABLES["equity"]
                conn.execute(sa.delete(eq).where(eq.c.run_id == rid,
                                                 eq.c.time.in_(list(parts["equity"]["time"]))))
            for table, columns in parts.items():
                n = db.bulk_insert(conn, table, columns, rid)
                counts["funding" if table == "funding_payments" else table] = n
            if trades_:
                counts.update(self._insert_trades(conn, rid, trades_, derive_orders))
            if state is not None:
                conn.execute(sa.update(runs).where(runs.c.id == rid).values(checkpoint=state))
            return counts

        return self._write(txn)

    # ------------------------------------------------------------------ single-row writers

    def record_order(self, run_id: int, **fields: Any) -> int:
        """Write one order; return its id. Fields: client_order_id, time, side (buy|sell),
        type (market|limit|stop|take_profit), qty (required); exchange_order_id, price,
        reduce_only (False), status ("new"), reason, trade_no. A client_order_id already in
        the ledger raises :class:`LedgerConflictError`."""
        fields = {"reduce_only": False, "status": "new", **fields}
        row = self._one_row("orders", run_id, fields)
        self._check_choice("order side", row["side"], ORDER_SIDES)
        self._check_choice("order type", row["type"], ORDER_TYPES)
        return self._insert_one("orders", run_id, row)

    def update_order(self, client_order_id: str, *, status: str | None = None,
                     exchange_order_id: str | None = None) -> None:
        """Set an order's status and/or exchange order id; unknown id raises LedgerInputError."""
        values = {k: v for k, v in (("status", status), ("exchange_order_id", exchange_order_id)) if v is not None}
        orders = TABLES["orders"]

        def txn(conn: sa.Connection) -> None:
            stmt = sa.update(orders).where(orders.c.client_order_id == client_order_id).values(**values)
            if values and conn.execute(stmt).rowcount != 1:
                raise LedgerInputError(f"order {client_order_id!r} is not in the ledger")

        self._write(txn)

    def record_fill(self, run_id: int, order_id: int, time: Any, side: str, qty: float, price: float,
                    fee: float = 0.0, liquidity: str = "taker") -> int:
        """Write one fill of order ``order_id`` (which must belong to ``run_id``); return its id.
        qty in base asset, price and fee in USDT (fee > 0 = paid)."""
        row = self._one_row("fills", run_id, dict(order_id=order_id, time=time, side=side, qty=qty,
                                                  price=price, fee=fee, liquidity=liquidity))
        self._check_choice("fill side", row["side"], ORDER_SIDES)
        self._check_choice("fill liquidity", row["liquidity"], LIQUIDITY)
        orders = TABLES["orders"]

        def check(conn: sa.Connection) -> None:
            owner = conn.execute(sa.select(orders.c.run_id).where(orders.c.id == order_id)).scalar()
            if owner is None:
                raise LedgerInputError(f"fill: order {order_id!r} is not in the ledger")
            if owner != run_id:
                raise LedgerInputError(f"fill: order {order_id} does not belong to run {run_id} but to run {owner}")

        return self._insert_one("fills", run_id, row, check)

    def record_position(self, run_id: int, **snapshot: Any) -> int:
        """Write one position snapshot; return its id. Fields: time, side (long|short|flat or
        +1/-1/0), qty (required); entry_price, mark_price, liquidation_price, stop_loss,
        take_profit, margin, unrealized_pnl (USDT, optional)."""
        if "side" in snapshot:
            snapshot["side"] = label(snapshot["side"], _SIDES, "position side")
        return self._insert_one("positions", run_id, self._one_row("positions", run_id, snapshot))

    # ------------------------------------------------------------------ internals

    def _write(self, fn: Callable[[sa.Connection], T]) -> T:
        """``fn(conn)`` in one write transaction (BEGIN IMMEDIATE on SQLite), the whole
        transaction retried while the database is locked (see the class docstring)."""
        def txn() -> T:
            try:
                with self._writer.begin() as conn:
                    return fn(conn)
            except sa.exc.IntegrityError as exc:
                msg = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise LedgerConflictError(f"{self!r}: write refused, nothing was written: {msg}") from exc

        return db.retrying(txn, seconds=self.retry_seconds, what="ledger write")

    def _read_txn(self, fn: Callable[[sa.Connection], T]) -> T:
        """``fn(conn)`` on a read connection, retried while the database is locked."""
        def txn() -> T:
            with self.engine.connect() as conn:
                return fn(conn)

        return db.retrying(txn, seconds=self.retry_seconds, what="ledger read")

    def _unknown(self, run_id: Any) -> UnknownRunError:
        return UnknownRunError(f"run {run_id!r} is not in the ledger {self!r}")

    def _check_run(self, conn: sa.Connection, run_id: Any) -> int:
        """``run_id`` as an int if that run exists, else UnknownRunError."""
        runs = TABLES["runs"]
        try:
            rid = int(run_id)
        except (TypeError, ValueError):
            raise self._unknown(run_id) from None
        if rid != run_id or conn.execute(sa.select(runs.c.id).where(runs.c.id == rid)).first() is None:
            raise self._unknown(run_id)
        return rid

    @staticmethod
    def _check_choice(what: str, value: Any, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            raise LedgerInputError(f"{what} {value!r} is not one of {allowed}")

    def _one_row(self, table: str, run_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        cols = writer_cols(table)
        unknown = set(fields) - {c.name for c in cols}
        if unknown:
            raise LedgerInputError(f"{table}: unknown fields {sorted(unknown)} (known: {[c.name for c in cols]})")
        return frame_to_rows(pd.DataFrame([fields]), cols, table, {"run_id": run_id})[0]

    def _insert_one(self, table: str, run_id: int, row: dict[str, Any],
                    check: Callable[[sa.Connection], None] | None = None) -> int:
        t = TABLES[table]

        def txn(conn: sa.Connection) -> int:
            values = {**row, "run_id": self._check_run(conn, run_id)}
            if check is not None:
                check(conn)
            return conn.execute(sa.insert(t).returning(t.c.id), values).scalar_one()

        return self._write(txn)

    def _insert_trades(self, conn: sa.Connection, run_id: int, rows: list[dict[str, Any]],
                       derive_orders: bool = True) -> dict[str, int]:
        for r in rows:
            r["run_id"] = run_id
        conn.execute(sa.insert(TABLES["trades"]), rows)
        if not derive_orders:
            return {"trades": len(rows), "orders": 0, "fills": 0}
        orders, fills = orders_and_fills(rows, run_id)
        t = TABLES["orders"]
        ids = conn.execute(sa.insert(t).returning(t.c.id, sort_by_parameter_order=True), orders).scalars().all()
        for fill, order_id in zip(fills, ids):
            fill["order_id"] = order_id
        conn.execute(sa.insert(TABLES["fills"]), fills)
        return {"trades": len(rows), "orders": len(orders), "fills": len(fills)}


def _equity_frame(equity: Any) -> Any:
    if isinstance(equity, pd.Series):
        if not isinstance(equity.index, pd.DatetimeIndex):
            raise LedgerInputError(f"equity: a Series must be indexed by tz-aware timestamps, "
                                   f"not a {type(equity.index).__name__}")
        return pd.DataFrame({"equity": equity.to_numpy()}, index=utc_index(equity.index, "equity index"))
    return equity


def _position_sides(df: Any) -> Any:
    """Position snapshots with sides +1/-1/0 replaced by long/short/flat."""
    if not isinstance(df, pd.DataFrame) or "side" not in df.columns:
        return df
    return df.assign(side=[label(v, _SIDES, "position side") for v in df["side"]])


def _risk_labels(df: Any) -> Any:
    """Risk events with ``RiskEvent`` integer codes replaced by their labels."""
    if not isinstance(df, pd.DataFrame) or "event" not in df.columns:
        return df
    return df.assign(event=[e if isinstance(e, str) or e is None else label(e, _RISK_LABELS, "risk event")
                            for e in df["event"]])


