"""Table definitions. Portable types only, so one set of migrations serves SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Float, Index, MetaData, String, Table
from sqlalchemy.dialects import postgresql

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JsonType = JSON().with_variant(postgresql.JSONB(), "postgresql")

predictions = Table(
    "predictions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("model_name", String(32), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("features", JsonType, nullable=False),
    Column("prediction", Float, nullable=False),
    Column("probability", Float, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Index("ix_predictions_model_created", "model_name", "created_at"),
)
