"""Alembic environment of the ledger: runs the migrations in versions/ against one database.

Used programmatically by ``perpbot.storage.ledger`` (no alembic.ini): the caller puts an open
SQLAlchemy ``Connection`` in ``config.attributes["connection"]`` (preferred), or sets the
``sqlalchemy.url`` main option. Offline (``--sql``) mode renders the DDL for that URL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from perpbot.storage.models import metadata as target_metadata

config = context.config


def _configure(**kwargs: object) -> None:
    context.configure(target_metadata=target_metadata, compare_type=True, **kwargs)


def run_migrations_offline() -> None:
    """Render the SQL for ``sqlalchemy.url`` without connecting."""
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
               dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: sa.Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the connection handed over by the caller, else a new one to the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            _run_on(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
