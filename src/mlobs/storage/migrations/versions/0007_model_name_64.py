"""Model names of up to 64 characters (any model of the catalogue, not only the demo's).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = (
    "predictions", "drift_windows", "drift_results", "alerts", "silences", "feedback",
    "label_trackers", "performance_results",
)  # fmt: skip


def _resize(old: int, new: int) -> None:
    for table in TABLES:
        # On SQLite, batch mode rebuilds the table (the declared length is what schema checks read).
        with op.batch_alter_table(table) as batch:
            batch.alter_column("model_name", type_=sa.String(new), existing_type=sa.String(old))


def upgrade() -> None:
    _resize(32, 64)


def downgrade() -> None:
    _resize(64, 32)
