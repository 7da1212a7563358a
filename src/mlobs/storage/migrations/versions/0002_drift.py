"""Live drift windows, their counts, and drift results.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "drift_windows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("profile_version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_drift_windows"),
        sa.UniqueConstraint("model_name", "seq", name="uq_drift_windows_model_seq"),
    )
    op.create_table(
        "drift_window_counts",
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("feature", sa.String(64), nullable=False),
        sa.Column("bin", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["drift_windows.id"],
            ondelete="CASCADE",
            name="fk_drift_window_counts_window_id_drift_windows",
        ),
        sa.PrimaryKeyConstraint("window_id", "feature", "bin", name="pk_drift_window_counts"),
    )
    op.create_table(
        "drift_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(32), nullable=False),
        sa.Column("dataset_name", sa.String(16), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("dataset_drift", sa.Boolean(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=False),
        sa.Column("drifted_features_count", sa.Integer(), nullable=False),
        sa.Column("report", JSON, nullable=False),
        sa.Column("quality", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_drift_results"),
    )
    op.create_index("ix_drift_results_model_created", "drift_results", ["model_name", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_drift_results_model_created", table_name="drift_results")
    op.drop_table("drift_results")
    op.drop_table("drift_window_counts")
    op.drop_table("drift_windows")
