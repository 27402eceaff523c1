"""Runs: the owning process (host, pid, start time), a status detail and the paper replay checkpoint.

Revision ID: 0002
Revises: 0001
Create Date: 2025-12-01

``owner_host`` / ``owner_pid`` / ``owner_started`` identify the process that writes a run, so
that a run left ``running`` by a process that died (kill -9, power loss) can be told from one
still running elsewhere and marked ``abandoned`` (see ``perpbot.storage.owner``);
``status_detail`` says why (whose process was gone, when it was marked; when it was resumed).
``checkpoint`` (JSON) holds a paper run's simulated account after its last recorded candle,
for ``perpbot run --mode paper --resume``. All nullable: runs written before this migration
have no owner (they are treated as abandoned when still ``running``).

Plain ADD / DROP COLUMN (SQLite >= 3.35 drops columns in place): a batch "copy and move" of
``runs`` would delete every per-run row through ON DELETE CASCADE when it drops the old table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("owner_host", sa.String(255)), ("owner_pid", sa.Integer()), ("owner_started", sa.Double()),
           ("status_detail", sa.Text()), ("checkpoint", sa.JSON(none_as_null=True)))


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("runs", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("runs", name)
