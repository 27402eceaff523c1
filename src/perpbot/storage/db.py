"""Database plumbing of the ledger: engines, Alembic migrations, column specs, fast bulk inserts.

No knowledge of runs or trades here: ``perpbot.storage.ledger`` builds on it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa
import tenacity
from alembic import command
from alembic.config import Config

from perpbot.storage.convert import Col, LedgerInputError, py_times, sqlite_times
from perpbot.logs import get_logger
from perpbot.storage.models import TABLES, UTCDateTime

log = get_logger("perpbot.storage")
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x7065727062  # PostgreSQL advisory lock key for concurrent upgrades ("perpb")


#: SQLite: how long one statement waits for another connection's lock (``PRAGMA busy_timeout``), ms.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Writers retry a transaction refused by a lock (SQLite "database is locked", PostgreSQL
#: serialization failure / deadlock) for at most this long, with random exponential backoff.
RETRY_SECONDS = 120.0
#: Execution option of the write engine: SQLite opens its transactions with BEGIN IMMEDIATE.
WRITE_OPTION = "perpbot_ledger_write"

_SQLITE_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (low byte of the extended result code)
_PG_RETRY_STATES = ("40001", "40P01", "55P03")  # serialization_failure, deadlock_detected, lock_not_available


def make_engine(url: str, echo: bool = False, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> sa.Engine:
    """Engine for a SQLAlchemy URL. JSON refuses NaN (``allow_nan=False``).

    SQLite, on every new connection (a ``connect`` event): ``busy_timeout`` (a statement waits
    up to ``busy_timeout_ms`` for a lock instead of failing at once), foreign keys enforced,
    and for a file database WAL journal (readers never block the writer, nor the writer the
    readers) with ``synchronous=NORMAL`` (in WAL mode a commit stays atomic and durable
    across an application crash; only a power loss can roll back the last commits, never
    corrupt the file; https://www.sqlite.org/pragma.html#pragma_synchronous). SQLAlchemy emits
    BEGIN itself (transactional DDL, savepoints): plain ``BEGIN`` on this engine, and
    ``BEGIN IMMEDIATE`` on :func:`write_engine` — a write transaction takes the write lock
    first, waiting up to ``busy_timeout`` for it, instead of reading under a deferred BEGIN
    and then failing at once with SQLITE_BUSY when the read lock cannot be upgraded because
    another connection wrote meanwhile (the busy handler is not called in that case;
    https://www.sqlite.org/lang_transaction.html). The file's parent folder is created.

    Raises :class:`LedgerInputError` for a string that is not a database URL.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise LedgerInputError(f"ledger URL {url!r} is not a database URL ({exc})") from None
    sqlite = parsed.get_backend_name() == "sqlite"
    file_db = sqlite and parsed.database not in (None, "", ":memory:") and not parsed.database.startswith("file:")
    if file_db:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, echo=echo, json_serializer=partial(json.dumps, allow_nan=False),
                              **({"connect_args": {"timeout": busy_timeout_ms / 1000}} if sqlite else {}))
    if sqlite:
        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN (transactional DDL, savepoints)
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")  # first: the next PRAGMAs may wait
            cur.execute("PRAGMA foreign_keys=ON")
            if file_db:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")
    return engine


def write_engine(engine: sa.Engine) -> sa.Engine:
    """The same engine (same pool) for write transactions: BEGIN IMMEDIATE on SQLite."""
    return engine.execution_options(**{WRITE_OPTION: True})


def is_retryable(exc: BaseException) -> bool:
    """True for a transaction refused by another connection's lock, which a retry can pass:
    SQLite SQLITE_BUSY / SQLITE_LOCKED ("database is locked"), PostgreSQL serialization
    failure, deadlock, lock not available."""
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _SQLITE_BUSY_CODES
    if getattr(orig, "sqlstate", None) in _PG_RETRY_STATES:
        return True
    return "database is locked" in str(orig)


def retrying(fn: Callable[[], T], *, seconds: float = RETRY_SECONDS, what: str = "ledger") -> T:
    """Call ``fn`` (one whole transaction: it must roll back completely when it raises) until it
    does not fail with a lock error (:func:`is_retryable`), for at most ``seconds`` after the
    first failure; random exponential backoff 50 ms .. 2 s between attempts (tenacity). Other
    errors, and the last lock error once the time is up, are raised as they are."""
    try:
        return fn()  # the common case: no lock in the way, no retry machinery
    except sa.exc.OperationalError as exc:
        if not is_retryable(exc):
            raise

    def _log(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("ledger_busy_retry", what=what, attempt=state.attempt_number,
                    waited_s=round(state.seconds_since_start, 3), error=str(getattr(exc, "orig", exc)))

    retryer = tenacity.Retrying(retry=tenacity.retry_if_exception(is_retryable),
                                wait=tenacity.wait_random_exponential(multiplier=0.05, max=2.0),
                                stop=tenacity.stop_after_delay(seconds), reraise=True, before_sleep=_log)
    return retryer(fn)


def alembic_config(connection: sa.Connection | None = None, url: str | None = None) -> Config:
    """An Alembic ``Config`` for the ledger's migrations, without any alembic.ini: pass an open
    connection (used as is, inside its transaction) or a URL. Use it with ``alembic.command``
    (upgrade, downgrade, current, history)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


#: Alembic keeps its running context in module globals: one migration at a time per process.
_UPGRADE_LOCK = threading.Lock()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """``alembic upgrade <revision>`` in one transaction (idempotent). Threads of one process
    migrate one at a time (Alembic is not thread-safe); processes that migrate at once wait for
    each other: an advisory lock on PostgreSQL, the write lock (BEGIN IMMEDIATE) on SQLite,
    retried while busy (:func:`retrying`)."""
    def _upgrade() -> None:
        with write_engine(engine).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            command.upgrade(alembic_config(conn), revision)

    if revision == "head" and retrying(lambda: _at_head(engine), what="migration check"):
        return  # nothing to do: no write lock taken (read-only commands stay read-only)
    with _UPGRADE_LOCK:
        retrying(_upgrade, what="migration")


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest migration's revision id (e.g. "0002")."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _at_head(engine: sa.Engine) -> bool:
    """True when the database is at the newest migration (a read; no lock held after it)."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head_revision()


def column_kind(col: sa.Column) -> str:
    """time | json | bool | int | float | str, from the model's column type."""
    t = col.type
    if isinstance(t, UTCDateTime):
        return "time"
    if isinstance(t, sa.JSON):
        return "json"
    if isinstance(t, sa.Boolean):
        return "bool"
    if isinstance(t, sa.Integer):
        return "int"
    if isinstance(t, sa.Float):
        return "float"
    return "str"


def writer_cols(table: str, **override: Col) -> list[Col]:
    """Writer columns of ``table`` (all but id/run_id), typed from the model; a frame's
    ``time`` may also be called ``timestamp`` (the market-data files' name)."""
    return [override.get(c.name) or Col(c.name, column_kind(c), required=not c.nullable,
                                        aliases=("timestamp",) if c.name == "time" else ())
            for c in TABLES[table].columns if c.name not in ("id", "run_id")]


def reader_cols(table: str, with_id: bool = False) -> list[tuple[str, str]]:
    """(name, kind) of the columns a reader returns: all but run_id (and id unless asked)."""
    return [(c.name, column_kind(c)) for c in TABLES[table].columns
            if c.name != "run_id" and (with_id or c.name != "id")]


def bulk_insert(conn: sa.Connection, table: str, columns: dict[str, Any], run_id: int) -> int:
    """Insert converted columns (see ``convert.frame_to_columns``) of one run; return row count.

    SQLite (and other drivers): one DBAPI ``executemany`` of SQL compiled by SQLAlchemy for the
    dialect, skipping SQLAlchemy's per-row parameter processing (3x faster on big frames);
    times are rendered in bulk in the exact text ``UTCDateTime`` writes. psycopg (PostgreSQL):
    ``COPY ... FROM STDIN`` (~5x faster than executemany). Both run on ``conn`` inside its
    transaction.
    """
    n = len(next(iter(columns.values()))) if columns else 0
    if n == 0:
        return 0
    sqlite = conn.dialect.name == "sqlite"
    arrays: dict[str, Any] = {"run_id": [run_id] * n}
    for name, values in columns.items():
        if isinstance(values, pd.DatetimeIndex):
            values = sqlite_times(values) if sqlite else py_times(values)
        arrays[name] = values
    if conn.dialect.driver == "psycopg":
        prep = conn.dialect.identifier_preparer
        copy_sql = (f"COPY {prep.format_table(TABLES[table])} "
                    f"({', '.join(prep.quote(k) for k in arrays)}) FROM STDIN")
        with conn.connection.driver_connection.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in zip(*arrays.values()):
                copy.write_row(row)
        return n
    compiled = sa.insert(TABLES[table]).compile(dialect=conn.dialect, column_keys=list(arrays))
    if compiled.positional:
        params: list[Any] = list(zip(*(arrays[k] for k in compiled.positiontup)))
    else:
        params = [dict(zip(arrays, vals)) for vals in zip(*arrays.values())]
    conn.exec_driver_sql(str(compiled), params)
    return n


def read_rows(conn: sa.Connection, table: str, run_id: int, cols: list[tuple[str, str]],
              order_by: str = "time") -> list[Any]:
    """Rows of one run, ordered by ``order_by`` then id. Time columns come back raw (SQLite's
    text / the driver's datetimes) for ``convert.db_rows_to_frame`` to parse all at once."""
    t = TABLES[table]
    raw = sa.String() if conn.dialect.name == "sqlite" else sa.DateTime(timezone=True)
    stmt = (sa.select(*(sa.type_coerce(t.c[n], raw).label(n) if k == "time" else t.c[n] for n, k in cols))
            .where(t.c.run_id == run_id).order_by(t.c[order_by], t.c.id))
    return list(conn.execute(stmt).all())
