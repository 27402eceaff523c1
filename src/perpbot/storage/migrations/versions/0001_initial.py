"""Initial ledger schema: runs, predictions, orders, fills, trades, positions, equity,
risk_events, funding_payments.

Revision ID: 0001
Revises:
Create Date: 2025-11-21

Written by hand to match perpbot/storage/models.py (tests/test_storage.py checks that the
two agree with Alembic's compare_metadata on SQLite and PostgreSQL). Timestamps are
sa.DateTime(timezone=True) here (the models wrap it in UTCDateTime, a Python-side type);
amounts are sa.Double (USDT), quantities sa.Double (base asset).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
PER_RUN_TABLES = ("predictions", "fills", "orders", "trades", "positions", "equity",
                  "risk_events", "funding_payments")


def _id(table: str) -> list[sa.SchemaItem]:
    return [sa.Column("id", sa.Integer(), nullable=False), sa.PrimaryKeyConstraint("id", name=f"pk_{table}")]


def _run_id(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=f"fk_{table}_run_id_runs", ondelete="CASCADE"),
    ]


def _time_index(table: str) -> None:
    op.create_index(f"ix_{table}_run_id_time", table, ["run_id", "time"])


def upgrade() -> None:
    op.create_table(
        "runs",
        *_id("runs"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("features_hash", sa.String(128), nullable=True),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("data_range_start", TS, nullable=True),
        sa.Column("data_range_end", TS, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )

    op.create_table(
        "predictions",
        *_id("predictions"),
        *_run_id("predictions"),
        sa.Column("time", TS, nullable=False),
        sa.Column("bar", sa.Integer(), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("features_hash", sa.String(128), nullable=True),
        sa.Column("p_down", sa.Double(), nullable=True),
        sa.Column("p_flat", sa.Double(), nullable=True),
        sa.Column("p_up", sa.Double(), nullable=True),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("signal", sa.SmallInteger(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
    )
    _time_index("predictions")

    op.create_table(
        "orders",
        *_id("orders"),
        *_run_id("orders"),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("exchange_order_id", sa.String(64), nullable=True),
        sa.Column("time", TS, nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("qty", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("trade_no", sa.Integer(), nullable=True),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    _time_index("orders")

    op.create_table(
        "fills",
        *_id("fills"),
        *_run_id("fills"),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("qty", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("fee", sa.Double(), nullable=False),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_fills_order_id_orders", ondelete="CASCADE"),
    )
    _time_index("fills")
    op.create_index("ix_fills_order_id", "fills", ["order_id"])

    op.create_table(
        "trades",
        *_id("trades"),
        *_run_id("trades"),
        sa.Column("trade_no", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("qty", sa.Double(), nullable=False),
        sa.Column("entry_time", TS, nullable=False),
        sa.Column("entry_price", sa.Double(), nullable=False),
        sa.Column("exit_time", TS, nullable=True),
        sa.Column("exit_price", sa.Double(), nullable=True),
        sa.Column("exit_reason", sa.String(32), nullable=True),
        *(sa.Column(name, sa.Double(), nullable=True) for name in (
            "gross_pnl", "fees", "funding", "pnl", "leverage", "margin",
            "stop_loss", "take_profit", "liquidation_price")),
        sa.Column("entry_bar", sa.Integer(), nullable=True),
        sa.Column("exit_bar", sa.Integer(), nullable=True),
        sa.UniqueConstraint("run_id", "trade_no", name="uq_trades_run_id_trade_no"),
    )

    op.create_table(
        "positions",
        *_id("positions"),
        *_run_id("positions"),
        sa.Column("time", TS, nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("qty", sa.Double(), nullable=False),
        *(sa.Column(name, sa.Double(), nullable=True) for name in (
            "entry_price", "mark_price", "liquidation_price", "stop_loss", "take_profit",
            "margin", "unrealized_pnl")),
    )
    _time_index("positions")

    op.create_table(
        "equity",
        *_id("equity"),
        *_run_id("equity"),
        sa.Column("time", TS, nullable=False),
        sa.Column("equity", sa.Double(), nullable=False),
        sa.Column("balance", sa.Double(), nullable=True),
        sa.Column("position_qty", sa.Double(), nullable=True),
    )
    _time_index("equity")

    op.create_table(
        "risk_events",
        *_id("risk_events"),
        *_run_id("risk_events"),
        sa.Column("time", TS, nullable=False),
        sa.Column("bar", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    _time_index("risk_events")

    op.create_table(
        "funding_payments",
        *_id("funding_payments"),
        *_run_id("funding_payments"),
        sa.Column("time", TS, nullable=False),
        sa.Column("rate", sa.Double(), nullable=False),
        sa.Column("mark_price", sa.Double(), nullable=True),
        sa.Column("qty", sa.Double(), nullable=True),
        sa.Column("amount", sa.Double(), nullable=False),
    )
    _time_index("funding_payments")


def downgrade() -> None:
    for table in PER_RUN_TABLES:  # fills before orders; every per-run table before runs
        op.drop_table(table)
    op.drop_table("runs")
