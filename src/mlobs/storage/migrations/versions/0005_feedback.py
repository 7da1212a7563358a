"""Ground truth: feedback labels, label trackers, performance results.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("prediction_id", sa.String(36), nullable=False),
        sa.Column("model_name", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actual", sa.Float(), nullable=False),
        sa.Column("prediction", sa.Float(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("processed", sa.Boolean(), nullable=False),
        sa.Column("window_seq", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("prediction_id", name="uq_feedback_prediction_id"),
    )
    op.create_index("ix_feedback_model_processed", "feedback", ["model_name", "processed", "id"])
    op.create_index("ix_feedback_model_window", "feedback", ["model_name", "window_seq"])
    op.create_table(
        "label_trackers",
        sa.Column("model_name", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("detector", JSON, nullable=False),
        sa.Column("window_seq", sa.Integer(), nullable=False),
        sa.Column("window_count", sa.Integer(), nullable=False),
        sa.Column("evaluated_through", sa.Integer(), nullable=False),
        sa.Column("labels_total", sa.BigInteger(), nullable=False),
        sa.Column("alarms", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_name", name="pk_label_trackers"),
    )
    op.create_table(
        "performance_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("window_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("realized", JSON, nullable=True),
        sa.Column("estimated", JSON, nullable=True),
        sa.Column("concept", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_performance_results"),
        sa.UniqueConstraint(
            "model_name", "kind", "window_seq", name="uq_performance_results_model_kind_seq"
        ),
    )
    op.create_index(
        "ix_performance_results_model_created",
        "performance_results",
        ["model_name", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_performance_results_model_created", table_name="performance_results")
    op.drop_table("performance_results")
    op.drop_table("label_trackers")
    op.drop_index("ix_feedback_model_window", table_name="feedback")
    op.drop_index("ix_feedback_model_processed", table_name="feedback")
    op.drop_table("feedback")
