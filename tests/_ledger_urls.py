"""The ``db_url`` fixture shared by the ledger tests: a fresh SQLite file, and a fresh
PostgreSQL schema (dropped afterwards) when PERPBOT_TEST_POSTGRES_URL is set
(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test; PERPBOT_REQUIRE_POSTGRES=1 makes an
unreachable server a failure instead of a skip).

Import it into a test module: ``from _ledger_urls import db_url  # noqa: F401``.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("PERPBOT_TEST_POSTGRES_URL")
PG_REQUIRED = os.environ.get("PERPBOT_REQUIRE_POSTGRES") == "1"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="set PERPBOT_TEST_POSTGRES_URL to run the ledger tests on PostgreSQL too"))])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs' / 'perpbot.db'}"  # folder does not exist yet
        return
    schema = f"pbtest_{uuid.uuid4().hex[:12]}"
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
    yield url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
