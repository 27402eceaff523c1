"""Platform schema: users, API keys, audit, encrypted exchange keys, risk profiles, oracle
checks, the double-entry wallet (accounts, entries, lines), platform orders/fills and the
journal hash chain.

Revision ID: 0003
Revises: 0002
Create Date: 2025-12-01

Written by hand to match perpbot/platform/models.py and perpbot/platform/ledger_models.py
(tests/test_platform_schema.py compares them with Alembic's compare_metadata on SQLite and
PostgreSQL). Money columns are NUMERIC(38, 18) on PostgreSQL and TEXT (VARCHAR(48), the exact
decimal string) on SQLite, which has no exact decimal type.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
TABLES = ("platform_chain", "platform_fills", "platform_orders", "wallet_lines", "wallet_entries",
          "wallet_accounts", "platform_oracle_checks", "platform_risk_profiles", "platform_exchange_keys",
          "platform_audit", "platform_api_keys", "platform_users")  # drop order: children first


def _money() -> sa.types.TypeEngine:
    return sa.Numeric(38, 18).with_variant(sa.String(48), "sqlite")


def _id(table: str) -> list[sa.SchemaItem]:
    return [sa.Column("id", sa.Integer(), nullable=False), sa.PrimaryKeyConstraint("id", name=f"pk_{table}")]


def _user_fk(table: str) -> list[sa.SchemaItem]:
    return [sa.Column("user_id", sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(["user_id"], ["platform_users.id"], name=f"fk_{table}_user_id_platform_users",
                                    ondelete="CASCADE")]


def upgrade() -> None:
    op.create_table(
        "platform_users", *_id("platform_users"),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("risk_profile", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("username", name="uq_platform_users_username"),
    )
    op.create_table(
        "platform_api_keys", *_id("platform_api_keys"), *_user_fk("platform_api_keys"),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.UniqueConstraint("key_hash", name="uq_platform_api_keys_key_hash"),
    )
    op.create_index("ix_platform_api_keys_user_id", "platform_api_keys", ["user_id"])
    op.create_table(
        "platform_audit", *_id("platform_audit"),
        sa.Column("time", TS, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("client", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_platform_audit_time", "platform_audit", ["time"])
    op.create_table(
        "platform_exchange_keys", *_id("platform_exchange_keys"), *_user_fk("platform_exchange_keys"),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("rotated_at", TS, nullable=True),
        sa.UniqueConstraint("user_id", "exchange", "label", name="uq_platform_exchange_keys_user_id_exchange_label"),
    )
    op.create_table(
        "platform_risk_profiles",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("min_confidence", sa.Double(), nullable=False),
        sa.Column("max_position_frac", sa.Double(), nullable=False),
        sa.Column("max_leverage", sa.Double(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_platform_risk_profiles"),
    )
    op.create_table(
        "platform_oracle_checks", *_id("platform_oracle_checks"),
        sa.Column("time", TS, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("venue_price", sa.Double(), nullable=True),
        sa.Column("median", sa.Double(), nullable=True),
        sa.Column("max_deviation_bps", sa.Double(), nullable=True),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
    )
    op.create_index("ix_platform_oracle_checks_symbol_time", "platform_oracle_checks", ["symbol", "time"])
    op.create_table(
        "wallet_accounts", *_id("wallet_accounts"), *_user_fk("wallet_accounts"),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("balance", _money(), nullable=False),
        sa.UniqueConstraint("user_id", "currency", "kind", name="uq_wallet_accounts_user_id_currency_kind"),
        sa.CheckConstraint("kind NOT IN ('available', 'locked') OR CAST(balance AS REAL) >= 0",
                           name="ck_wallet_accounts_nonneg"),
    )
    op.create_table(
        "wallet_entries", *_id("wallet_entries"), *_user_fk("wallet_entries"),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("order_ref", sa.String(64), nullable=True),
        sa.Column("memo", sa.String(256), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_wallet_entries_user_id_idempotency_key"),
    )
    op.create_index("ix_wallet_entries_user_id_id", "wallet_entries", ["user_id", "id"])
    op.create_table(
        "wallet_lines", *_id("wallet_lines"),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["wallet_entries.id"], name="fk_wallet_lines_entry_id_wallet_entries",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["account_id"], ["wallet_accounts.id"],
                                name="fk_wallet_lines_account_id_wallet_accounts", ondelete="CASCADE"),
    )
    op.create_index("ix_wallet_lines_entry_id", "wallet_lines", ["entry_id"])
    op.create_index("ix_wallet_lines_account_id", "wallet_lines", ["account_id"])
    op.create_table(
        "platform_orders", *_id("platform_orders"), *_user_fk("platform_orders"),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        *(sa.Column(name, _money(), nullable=False) for name in ("qty", "price", "leverage", "margin")),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("client_order_id", name="uq_platform_orders_client_order_id"),
    )
    op.create_index("ix_platform_orders_status_created_at", "platform_orders", ["status", "created_at"])
    op.create_index("ix_platform_orders_user_id_id", "platform_orders", ["user_id", "id"])
    op.create_table(
        "platform_fills", *_id("platform_fills"),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("time", TS, nullable=False),
        *(sa.Column(name, _money(), nullable=False) for name in ("qty", "price", "fee")),
        sa.Column("venue_fill_id", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["platform_orders.id"], name="fk_platform_fills_order_id_platform_orders",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_platform_fills_order_id", "platform_fills", ["order_id"])
    op.create_table(
        "platform_chain",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.Column("row_digest", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_platform_chain"),
        sa.UniqueConstraint("table_name", "row_id", name="uq_platform_chain_table_name_row_id"),
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
