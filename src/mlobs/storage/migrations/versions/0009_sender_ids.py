"""Predictions logged under their sender's id: a prediction id is any string of up to 128
characters, unique per model. The log's key becomes (model name, prediction id), and a label's
(model name, prediction id); ids alone stay indexed for lookups without a model.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.alter_column("id", type_=sa.String(128), existing_type=sa.String(36))
        batch.drop_constraint("pk_predictions", type_="primary")
        batch.create_primary_key("pk_predictions", ["model_name", "id"])
        batch.create_index("ix_predictions_id", ["id"])
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("prediction_id", type_=sa.String(128), existing_type=sa.String(36))
        batch.drop_constraint("uq_feedback_prediction_id", type_="unique")
        batch.create_unique_constraint("uq_feedback_prediction", ["model_name", "prediction_id"])
        batch.create_index("ix_feedback_prediction_id", ["prediction_id"])


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_index("ix_feedback_prediction_id")
        batch.drop_constraint("uq_feedback_prediction", type_="unique")
        batch.create_unique_constraint("uq_feedback_prediction_id", ["prediction_id"])
        batch.alter_column("prediction_id", type_=sa.String(36), existing_type=sa.String(128))
    with op.batch_alter_table("predictions") as batch:
        batch.drop_index("ix_predictions_id")
        batch.drop_constraint("pk_predictions", type_="primary")
        batch.create_primary_key("pk_predictions", ["id"])
        batch.alter_column("id", type_=sa.String(36), existing_type=sa.String(128))
