"""KServe payload-logger events waiting for their other half (request or response).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kserve_halves",
        sa.Column("event_id", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "kind", name="pk_kserve_halves"),
    )
    op.create_index("ix_kserve_halves_received", "kserve_halves", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_kserve_halves_received", table_name="kserve_halves")
    op.drop_table("kserve_halves")
