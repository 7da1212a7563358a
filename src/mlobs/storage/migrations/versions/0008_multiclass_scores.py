"""Multiclass classifiers: each prediction's class scores and predicted label, and the scores
copied with its label (log loss over labels needs them).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("scores", JSON, nullable=True))
        batch.add_column(sa.Column("label", JSON, nullable=True))
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("scores", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("scores")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("label")
        batch.drop_column("scores")
