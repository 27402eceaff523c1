"""Predictions: the realised triple-barrier label, once the horizon has passed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

``realised_label`` (-1 / 0 / +1, NULL until the label's horizon has passed) is what the market
did after a recorded prediction, with the model's own barrier rule
(:func:`perpbot.ml.outcomes.settle_predictions`): live accuracy and calibration are computed
from it and set beside the model's out-of-sample figures. Plain ADD COLUMN, nullable.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("realised_label", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("predictions", "realised_label")
