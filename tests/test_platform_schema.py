"""Migration 0003_platform against the platform's ORM models, on SQLite and PostgreSQL: the same
tables, columns, types, keys and indexes; money stored exactly (NUMERIC(38, 18) / decimal text);
the CHECK that keeps user balances >= 0 in the database itself; a downgrade to 0001 that removes
only the platform tables and keeps the ledger's data."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from _platform_db import db_url, engine, make_user  # noqa: F401  (fixtures)

from perpbot.platform.db import Base, to_money
from perpbot.platform.ledger_models import WalletAccount
from perpbot.storage import Ledger
from perpbot.storage.db import alembic_config
from perpbot.storage.models import metadata as ledger_metadata

PLATFORM_TABLES = {"platform_users", "platform_api_keys", "platform_audit", "platform_exchange_keys",
                   "platform_risk_profiles", "platform_oracle_checks", "wallet_accounts", "wallet_entries",
                   "wallet_lines", "platform_orders", "platform_fills", "platform_chain"}


def test_migration_creates_exactly_the_platform_models(engine):
    assert set(Base.metadata.tables) == PLATFORM_TABLES
    with engine.connect() as conn:
        assert PLATFORM_TABLES <= set(sa.inspect(conn).get_table_names())
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, [ledger_metadata, Base.metadata]) == []
        money = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns("wallet_lines")}["amount"]
        if conn.dialect.name == "postgresql":
            assert (money.precision, money.scale) == (38, 18)
        else:
            assert isinstance(money, sa.String) and money.length == 48
        # the comparison can fail: a model with a float balance is reported
        drifted = sa.MetaData()
        for t in [*ledger_metadata.sorted_tables, *Base.metadata.sorted_tables]:
            t.to_metadata(drifted)
        drifted.tables["wallet_accounts"].c.balance.type = sa.Double()
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), drifted)
        assert [d[0][0] if isinstance(d, list) else d[0] for d in diffs] == ["modify_type"]


def test_money_round_trips_exactly_and_the_database_refuses_negative_balances(engine):
    uid = make_user(engine, "schema")
    tiny = Decimal("12345678901234567890.123456789012345678")
    with engine.begin() as conn:
        conn.execute(sa.insert(WalletAccount).values(user_id=uid, currency="USDT", kind="available", balance=tiny))
        conn.execute(sa.insert(WalletAccount).values(user_id=uid, currency="USDT", kind="external", balance=-tiny))
    with engine.connect() as conn:
        got = dict(conn.execute(sa.select(WalletAccount.kind, WalletAccount.balance)).all())
    assert got == {"available": tiny, "external": -tiny}
    with pytest.raises(sa.exc.IntegrityError, match="(?i)check"):
        with engine.begin() as conn:
            conn.execute(sa.update(WalletAccount).where(WalletAccount.kind == "available")
                         .values(balance=Decimal("-0.000000000000000001")))
    with pytest.raises(TypeError, match="not float"):
        to_money(0.1)


def test_downgrade_to_0001_drops_only_the_platform_and_keeps_the_ledger(db_url):
    led = Ledger(db_url)
    run = led.start_run("backtest", "ema-cross", "SOL/USDT:USDT", "5m")
    led.close()
    eng = sa.create_engine(db_url)
    with eng.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    with eng.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        assert not names & PLATFORM_TABLES and "runs" in names
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0001"
    eng.dispose()
    again = Ledger(db_url)  # upgrades to head again
    assert again.get_run(run)["strategy"] == "ema-cross"
    with again.engine.connect() as conn:
        assert PLATFORM_TABLES <= set(sa.inspect(conn).get_table_names())
    again.close()
