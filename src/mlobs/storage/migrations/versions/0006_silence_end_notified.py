"""Silences: when the alerts a silence covered were notified after it ended.

Silences that have ended by the time of the upgrade count as notified (the processes that ran
them notified then).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("silences") as batch:
        batch.add_column(sa.Column("end_notified_at", sa.DateTime(timezone=True), nullable=True))
    silences = sa.table(
        "silences",
        sa.column("ends_at", sa.DateTime(timezone=True)),
        sa.column("end_notified_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(timezone.utc)
    op.execute(
        silences.update()
        .where(silences.c.ends_at <= now)
        .values(end_notified_at=silences.c.ends_at)
    )


def downgrade() -> None:
    with op.batch_alter_table("silences") as batch:
        batch.drop_column("end_notified_at")
