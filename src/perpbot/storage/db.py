"""Database plumbing of the ledger: engines, Alembic migrations, column specs, fast bulk inserts.

No knowledge of runs or trades here: ``perpbot.storage.ledger`` builds on it.
"""

from __future__ import annotations

import json
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from perpbot.storage.convert import Col, LedgerInputError, py_times, sqlite_times
from perpbot.storage.models import TABLES, UTCDateTime

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x7065727062  # PostgreSQL advisory lock key for concurrent upgrades ("perpb")


def make_engine(url: str, echo: bool = False) -> sa.Engine:
    """Engine for a SQLAlchemy URL. SQLite: the file's parent folder is created, foreign keys
    are enforced, WAL journal (readers do not block the writer), and SQLAlchemy emits BEGIN
    itself so DDL and savepoints are transactional. JSON refuses NaN (``allow_nan=False``).

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
                              **({"connect_args": {"timeout": 30}} if sqlite else {}))
    if sqlite:
        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN (transactional DDL, savepoints)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if file_db:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN")
    return engine


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
    migrate one at a time (Alembic is not thread-safe); on PostgreSQL an advisory lock makes
    two processes that migrate at once wait for each other."""
    with _UPGRADE_LOCK, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        command.upgrade(alembic_config(conn), revision)


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
    text / the driver's datetimes) for ``convert.rows_to_frame`` to parse all at once."""
    t = TABLES[table]
    raw = sa.String() if conn.dialect.name == "sqlite" else sa.DateTime(timezone=True)
    stmt = (sa.select(*(sa.type_coerce(t.c[n], raw).label(n) if k == "time" else t.c[n] for n, k in cols))
            .where(t.c.run_id == run_id).order_by(t.c[order_by], t.c.id))
    return list(conn.execute(stmt).all())
