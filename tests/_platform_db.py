"""Database fixtures of the platform tests: a SQLite file, or a fresh PostgreSQL schema per test
(PERPBOT_TEST_POSTGRES_URL; skipped without it, a failure with PERPBOT_REQUIRE_POSTGRES=1)."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("PERPBOT_TEST_POSTGRES_URL")
PG_REQUIRED = os.environ.get("PERPBOT_REQUIRE_POSTGRES") == "1"
PG_MARK = pytest.mark.skipif(not PG_URL, reason="set PERPBOT_TEST_POSTGRES_URL to run the platform tests on PostgreSQL")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=PG_MARK)]


@contextmanager
def pg_schema():
    """A fresh PostgreSQL schema; yields a URL whose search_path is that schema; drops it at exit."""
    schema = f"pftest_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        msg = f"PostgreSQL at PERPBOT_TEST_POSTGRES_URL unreachable: {str(exc.orig).strip().splitlines()[0]}"
        if PG_REQUIRED:
            pytest.fail(msg + " (PERPBOT_REQUIRE_POSTGRES=1 makes this a failure)")
        pytest.skip(msg)
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False), schema
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def url_for(backend: str, tmp_path):
    """Context manager yielding a database URL of ``backend`` (sqlite file under tmp_path / fresh PG schema)."""
    if backend == "sqlite":
        @contextmanager
        def _sqlite():
            yield f"sqlite:///{tmp_path / 'platform.db'}"
        return _sqlite()

    @contextmanager
    def _pg():
        with pg_schema() as (url, _schema):
            yield url
    return _pg()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    with url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(db_url):
    from perpbot.platform.db import open_engine

    eng = open_engine(db_url)
    yield eng
    eng.dispose()


def make_user(engine, username: str, role: str = "trader") -> int:
    """Insert a user row directly (no password: the wallet tests need only the id); return its id."""
    from perpbot.platform.models import User
    from perpbot.platform.wallet import write_session

    with write_session(engine) as s:
        user = User(username=username, password_hash="!", role=role, risk_profile="conservative", disabled=False,
                    failed_logins=0)
        s.add(user)
        s.flush()
        return user.id
